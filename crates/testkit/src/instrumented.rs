//! A wrapper around any real store that counts calls per operation and fails chosen operations
//! on demand: for testing what layers above a store do when it is slow to be asked or goes away.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use sessionbank_core::{
    Capabilities, Error, ErrorKind, Operation, Page, Patch, Record, Result, SessionId, Store,
    Timestamp, async_trait,
};

/// How often an operation is still to fail: `None` until [`InstrumentedStore::heal`].
type FailureBudget = Option<u64>;

#[derive(Debug, Default)]
struct Shared {
    calls: HashMap<Operation, usize>,
    failing: HashMap<Operation, FailureBudget>,
}

/// A real store behind a wrapper that counts every call per [`Operation`] and makes chosen
/// operations fail with [`ErrorKind::Unavailable`] (the kind a database that went away gives).
/// Clones share the counters and the failure plan. A failed call never reaches the inner store.
///
/// # Examples
///
/// ```
/// use sessionbank_core::{ErrorKind, MemoryStore, Operation, Record, SessionId, Store, Timestamp};
/// use sessionbank_testkit::InstrumentedStore;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = InstrumentedStore::new(MemoryStore::new());
/// let id = SessionId::generate()?;
/// store.fail_times(Operation::Set, 1);
/// let err = store.set(&id, &Record::new(Timestamp::now())).await.unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::Unavailable);
/// store.set(&id, &Record::new(Timestamp::now())).await?; // the budget of one failure is spent
/// assert_eq!(store.calls(Operation::Set), 2);
/// # Ok::<(), sessionbank_core::Error>(())
/// # })?;
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct InstrumentedStore<S> {
    inner: S,
    shared: Arc<Mutex<Shared>>,
    failure_message: Arc<str>,
}

impl<S: Store> InstrumentedStore<S> {
    /// Wraps `inner`, counting from zero and failing nothing.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            shared: Arc::default(),
            failure_message: "injected failure".into(),
        }
    }

    /// Uses `message` as the text of injected failures (to check it never reaches a client).
    #[must_use]
    pub fn with_failure_message(mut self, message: &str) -> Self {
        self.failure_message = message.into();
        self
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How many times `operation` was called (failed calls included).
    pub fn calls(&self, operation: Operation) -> usize {
        self.lock().calls.get(&operation).copied().unwrap_or(0)
    }

    /// How many calls of any operation were made.
    pub fn total_calls(&self) -> usize {
        self.lock().calls.values().sum()
    }

    /// Sets every counter back to zero.
    pub fn reset_calls(&self) {
        self.lock().calls.clear();
    }

    /// Makes every call of these operations fail until [`heal`](Self::heal).
    pub fn fail(&self, operations: &[Operation]) {
        let mut shared = self.lock();
        for operation in operations {
            shared.failing.insert(*operation, None);
        }
    }

    /// Makes the next `times` calls of `operation` fail.
    pub fn fail_times(&self, operation: Operation, times: u64) {
        self.lock().failing.insert(operation, Some(times));
    }

    /// Stops every injected failure.
    pub fn heal(&self) {
        self.lock().failing.clear();
    }

    fn enter(&self, operation: Operation) -> Result<()> {
        let mut shared = self.lock();
        *shared.calls.entry(operation).or_default() += 1;
        let fails = match shared.failing.get_mut(&operation) {
            None => false,
            Some(None) => true,
            Some(Some(0)) => false,
            Some(Some(left)) => {
                *left -= 1;
                true
            }
        };
        if fails {
            return Err(Error::new(
                ErrorKind::Unavailable,
                operation,
                self.failure_message.to_string(),
            )
            .with_backend(self.inner.backend()));
        }
        Ok(())
    }
}

#[async_trait]
impl<S: Store> Store for InstrumentedStore<S> {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, id: &SessionId) -> Result<Option<Record>> {
        self.enter(Operation::Get)?;
        self.inner.get(id).await
    }
    async fn set(&self, id: &SessionId, record: &Record) -> Result<()> {
        self.enter(Operation::Set)?;
        self.inner.set(id, record).await
    }
    async fn create(&self, id: &SessionId, record: &Record) -> Result<()> {
        self.enter(Operation::Create)?;
        self.inner.create(id, record).await
    }
    async fn update(&self, id: &SessionId, patch: &Patch) -> Result<()> {
        self.enter(Operation::Update)?;
        self.inner.update(id, patch).await
    }
    async fn touch(&self, id: &SessionId, expires_at: Option<Timestamp>) -> Result<()> {
        self.enter(Operation::Touch)?;
        self.inner.touch(id, expires_at).await
    }
    async fn destroy(&self, id: &SessionId) -> Result<()> {
        self.enter(Operation::Destroy)?;
        self.inner.destroy(id).await
    }
    async fn rename(&self, old: &SessionId, new: &SessionId) -> Result<()> {
        self.enter(Operation::Rename)?;
        self.inner.rename(old, new).await
    }
    async fn all(&self, cursor: Option<&str>, limit: usize) -> Result<Page> {
        self.enter(Operation::All)?;
        self.inner.all(cursor, limit).await
    }
    async fn length(&self) -> Result<u64> {
        self.enter(Operation::Length)?;
        self.inner.length().await
    }
    async fn clear(&self) -> Result<u64> {
        self.enter(Operation::Clear)?;
        self.inner.clear().await
    }
    async fn cleanup(&self) -> Result<u64> {
        self.enter(Operation::Cleanup)?;
        self.inner.cleanup().await
    }
    async fn owned_by(&self, owner: &str) -> Result<Vec<(SessionId, Record)>> {
        self.enter(Operation::OwnedBy)?;
        self.inner.owned_by(owner).await
    }
    async fn destroy_owned_by(&self, owner: &str, except: Option<&SessionId>) -> Result<u64> {
        self.enter(Operation::DestroyOwnedBy)?;
        self.inner.destroy_owned_by(owner, except).await
    }
}
