//! [`session_extractor!`](crate::session_extractor) and
//! [`session_error!`](crate::session_error): the methods every adapter's `Session` extractor and
//! `SessionError` share, written once (each adapter defines its own types, since only a local
//! type can implement its framework's extractor and response traits).

/// Gives an adapter's extractor type (a struct with one field `handle: SessionHandle`) the
/// shared constructor, accessors and `Deref` to [`SessionHandle`](sessionbank_core::SessionHandle).
///
/// # Examples
///
/// ```
/// use sessionbank_core::{ExpiryPolicy, MemoryStore, SessionHandle, StoreHandle, system_clock};
///
/// /// A (hypothetical) adapter's extractor.
/// #[derive(Clone, Debug)]
/// pub struct Session {
///     handle: SessionHandle,
/// }
///
/// sessionbank_web::session_extractor!(Session);
///
/// let store = StoreHandle::new(MemoryStore::new());
/// let session = Session::new(SessionHandle::new(store, ExpiryPolicy::new(), system_clock(), None));
/// assert_eq!(session.store().backend(), "memory");
/// assert!(!session.is_loaded(), "derefs to the handle");
/// ```
#[macro_export]
macro_rules! session_extractor {
    ($extractor:ident) => {
        impl $extractor {
            /// Wraps a core handle (the middleware does this for each request).
            pub fn new(handle: sessionbank_core::SessionHandle) -> Self {
                Self { handle }
            }

            /// The store sessions live in, for operations on other sessions, e.g.
            /// `session.store().destroy_owned_by(user, except)`.
            pub fn store(&self) -> &sessionbank_core::StoreHandle {
                self.handle.store()
            }

            /// The core handle.
            pub fn handle(&self) -> &sessionbank_core::SessionHandle {
                &self.handle
            }

            /// The core handle, by value.
            pub fn into_handle(self) -> sessionbank_core::SessionHandle {
                self.handle
            }
        }

        impl ::std::ops::Deref for $extractor {
            type Target = sessionbank_core::SessionHandle;

            fn deref(&self) -> &sessionbank_core::SessionHandle {
                &self.handle
            }
        }
    };
}

/// Gives an adapter's error type (a tuple struct over [`sessionbank_core::Error`], deriving
/// `thiserror::Error` with `#[from]`) the accessors `inner` and `into_inner`.
///
/// # Examples
///
/// ```
/// use sessionbank_core::{Error, ErrorKind, Operation};
///
/// /// A (hypothetical) adapter's error.
/// #[derive(Debug)]
/// pub struct SessionError(Error);
///
/// sessionbank_web::session_error!(SessionError);
///
/// let err = SessionError(Error::new(ErrorKind::Unavailable, Operation::Get, "down"));
/// assert_eq!(err.inner().kind(), ErrorKind::Unavailable);
/// assert_eq!(err.into_inner().kind(), ErrorKind::Unavailable);
/// ```
#[macro_export]
macro_rules! session_error {
    ($error:ident) => {
        impl $error {
            /// The underlying error.
            pub fn inner(&self) -> &sessionbank_core::Error {
                &self.0
            }

            /// The underlying error, by value.
            pub fn into_inner(self) -> sessionbank_core::Error {
                self.0
            }
        }
    };
}
