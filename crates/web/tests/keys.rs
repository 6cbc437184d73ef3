//! The web core refuses to sign sessionbank's own cookies with a short legacy secret, before it
//! writes anything.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use sessionbank_core::{ErrorKind, MemoryStore, StoreHandle};
use sessionbank_web::{Key, KeyRing, RequestSession, SessionConfig};

#[tokio::test]
async fn a_legacy_secret_with_the_native_format_is_a_config_error_and_writes_nothing() {
    let store = StoreHandle::new(MemoryStore::new());
    let keys = KeyRing::new(Key::from_legacy_secret("keyboard cat").unwrap());
    let config = Arc::new(SessionConfig::new(store.clone(), keys));

    let session = RequestSession::start(&config, std::iter::empty());
    session.handle().insert("user", "ada").await.unwrap();
    let err = session.finish().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("Key::from_legacy_secret"), "{err}");
    assert_eq!(store.length().await.unwrap(), 0, "nothing written");
}
