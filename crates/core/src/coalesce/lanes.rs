//! The lanes: per session, at most one read and one write in flight, the calls waiting
//! behind them, and how a finished call hands its answer (or its error) to them.

use std::sync::Arc;

use dashmap::DashMap;
use dashmap::Entry;
use tokio::sync::oneshot;

use crate::error::{Error, ErrorKind, Operation, Result};
use crate::id::SessionId;
use crate::record::{Patch, Record};
use crate::store::Store;
use crate::time::Timestamp;

/// Which calls of a session share a lane: a `get` never waits for a write (`update` or
/// `touch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Lane {
    Get,
    Write,
}

/// A write waiting on the write lane: an `update`'s patch, or a `touch`'s new expiry.
pub(super) enum Change {
    Update(Patch),
    Touch(Option<Timestamp>),
}

impl Change {
    pub(super) fn operation(&self) -> Operation {
        match self {
            Change::Update(_) => Operation::Update,
            Change::Touch(_) => Operation::Touch,
        }
    }

    /// Folds this change into `merged`: a touch is a patch that moves the expiry only.
    pub(super) fn fold_into(&self, merged: &mut Patch) {
        match self {
            Change::Update(patch) => merged.then(patch),
            Change::Touch(expires_at) => merged.expires_at = Some(*expires_at),
        }
    }

    /// Writes this change alone, as its caller asked.
    pub(super) async fn write(&self, inner: &dyn Store, id: &SessionId) -> Result<()> {
        match self {
            Change::Update(patch) => inner.update(id, patch).await,
            Change::Touch(expires_at) => inner.touch(id, *expires_at).await,
        }
    }
}

/// A call waiting for the one in flight on its lane, and where its result goes.
pub(super) enum Waiter {
    Get(oneshot::Sender<Result<Option<Record>>>),
    Write(Change, oneshot::Sender<Result<()>>),
}

/// What the wrapper shares with the tasks that run waiting calls.
pub(super) struct Shared {
    pub(super) inner: Arc<dyn Store>,
    /// A lane of a session is here while one of its calls is in flight; its list holds the
    /// calls that arrived meanwhile. Sharded: sessions in different shards never contend.
    pub(super) in_flight: DashMap<(SessionId, Lane), Vec<Waiter>>,
    /// How many calls may wait behind the one in flight, per session and lane.
    pub(super) max_waiters: usize,
}

/// What a call found on its session's lane.
pub(super) enum Joined<T> {
    /// Nothing in flight: this call runs, and answers the calls that queue behind it.
    Lead,
    /// A call is in flight: this one waits for the answer.
    Wait(oneshot::Receiver<Result<T>>),
    /// A call is in flight and `max_waiters` already wait: refused at once.
    Full,
}

impl Shared {
    /// Joins the lane's call in flight ([`Joined::Wait`]), is refused when too many already
    /// wait ([`Joined::Full`]), or marks the lane in flight
    /// ([`Joined::Lead`]: the caller runs its call itself). `waiter` makes the waiting entry.
    pub(super) fn join<T>(
        &self,
        key: (SessionId, Lane),
        waiter: impl FnOnce(oneshot::Sender<Result<T>>) -> Waiter,
    ) -> Joined<T> {
        match self.in_flight.entry(key) {
            Entry::Occupied(waiting) if waiting.get().len() >= self.max_waiters => Joined::Full,
            Entry::Occupied(mut waiting) => {
                let (done, result) = oneshot::channel();
                waiting.get_mut().push(waiter(done));
                Joined::Wait(result)
            }
            Entry::Vacant(lane) => {
                lane.insert(Vec::new());
                Joined::Lead
            }
        }
    }

    /// The error of a call refused because too many calls of its session already wait.
    pub(super) fn full<T>(&self, operation: Operation) -> Result<T> {
        Err(Error::new(
            ErrorKind::Unavailable,
            operation,
            format!(
                "{} calls of this session already wait behind the one in flight; refusing more \
                 until it answers",
                self.max_waiters
            ),
        )
        .with_backend(self.inner.backend()))
    }

    /// The calls that arrived while the lane's last call was in flight; when there are none, the
    /// lane is no longer in flight.
    pub(super) fn next_batch(&self, key: &(SessionId, Lane)) -> Vec<Waiter> {
        match self.in_flight.entry(*key) {
            Entry::Occupied(mut waiting) if !waiting.get().is_empty() => {
                std::mem::take(waiting.get_mut())
            }
            Entry::Occupied(lane) => {
                lane.remove();
                Vec::new()
            }
            Entry::Vacant(_) => Vec::new(),
        }
    }

    /// Runs batches of waiting calls of a lane until none is left.
    pub(super) async fn drain(self: Arc<Self>, key: (SessionId, Lane)) {
        let mut guard = Draining {
            shared: &self,
            key,
            done: false,
        };
        loop {
            let batch = self.next_batch(&key);
            if batch.is_empty() {
                guard.done = true;
                return;
            }
            self.run_batch(&key.0, batch).await;
        }
    }

    /// Runs a batch of one lane: one `get` for all, or one merged write.
    pub(super) async fn run_batch(&self, id: &SessionId, batch: Vec<Waiter>) {
        // A caller that stopped waiting (its request was dropped) has its call dropped too, as
        // its own future would have been before it reached the store.
        let mut gets = Vec::new();
        let mut writes = Vec::new();
        for waiter in batch {
            match waiter {
                Waiter::Get(done) if !done.is_closed() => gets.push(done),
                Waiter::Write(change, done) if !done.is_closed() => writes.push((change, done)),
                Waiter::Get(_) | Waiter::Write(..) => {}
            }
        }
        tracing::trace!(
            gets = gets.len(),
            writes = writes.len(),
            "running calls that waited for one of their session"
        );
        if !gets.is_empty() {
            let result = self.inner.get(id).await;
            for done in gets {
                let _ = done.send(match &result {
                    Ok(record) => Ok(record.clone()),
                    Err(e) => Err(copy_of(e, Operation::Get)),
                });
            }
        }
        if !writes.is_empty() {
            self.write_changes(id, writes).await;
        }
    }

    /// Writes waiting changes as one: a `touch` with the last expiry when all are touches,
    /// otherwise one `update` of the merged patch. Tells each waiter how it went.
    pub(super) async fn write_changes(
        &self,
        id: &SessionId,
        mut batch: Vec<(Change, oneshot::Sender<Result<()>>)>,
    ) {
        if batch.len() == 1 {
            let (change, done) = batch.remove(0);
            let _ = done.send(change.write(&*self.inner, id).await);
            return;
        }
        let result = if let Some(Change::Touch(last)) = batch.last().map(|(change, _)| change)
            && batch
                .iter()
                .all(|(change, _)| matches!(change, Change::Touch(_)))
        {
            self.inner.touch(id, *last).await
        } else {
            let mut merged = Patch::new();
            for (change, _) in &batch {
                change.fold_into(&mut merged);
            }
            self.inner.update(id, &merged).await
        };
        match result {
            Ok(()) => {
                for (_, done) in batch {
                    let _ = done.send(Ok(()));
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::InvalidInput | ErrorKind::TooLarge) => {
                // One change was refused, and as writes are atomic nothing was written: write
                // them one by one so that only its request fails.
                for (change, done) in batch {
                    let _ = done.send(change.write(&*self.inner, id).await);
                }
            }
            Err(e) => {
                for (change, done) in batch {
                    let _ = done.send(Err(copy_of(&e, change.operation())));
                }
            }
        }
    }
}

/// Left by a task that runs waiting calls: if the task is dropped (its runtime shuts down), the
/// calls still waiting fail instead of waiting forever, and the lane is no longer in flight.
pub(super) struct Draining<'a> {
    pub(super) shared: &'a Shared,
    pub(super) key: (SessionId, Lane),
    pub(super) done: bool,
}

impl Drop for Draining<'_> {
    fn drop(&mut self) {
        if !self.done {
            let waiting = self
                .shared
                .in_flight
                .remove(&self.key)
                .map(|(_, waiting)| waiting)
                .unwrap_or_default();
            fail_all(
                waiting,
                self.shared.inner.backend(),
                "the task running this session's call was stopped",
            );
        }
    }
}

/// Held by the call in flight on a lane. When it ends, returned or dropped, the calls that
/// arrived meanwhile go to a task that runs them.
pub(super) struct InFlight<'a> {
    pub(super) shared: &'a Arc<Shared>,
    pub(super) key: (SessionId, Lane),
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let Entry::Occupied(lane) = self.shared.in_flight.entry(self.key) else {
            return;
        };
        if lane.get().is_empty() {
            lane.remove();
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                drop(lane);
                runtime.spawn(self.shared.clone().drain(self.key));
            }
            Err(_) => {
                let waiting = lane.remove();
                fail_all(
                    waiting,
                    self.shared.inner.backend(),
                    "no async runtime was left to run this session's call",
                );
            }
        }
    }
}

/// Fails every waiting call with `Unavailable`, saying `why`.
pub(super) fn fail_all(waiting: Vec<Waiter>, backend: &'static str, why: &'static str) {
    let error =
        |operation| Error::new(ErrorKind::Unavailable, operation, why).with_backend(backend);
    for waiter in waiting {
        match waiter {
            Waiter::Get(done) => {
                let _ = done.send(Err(error(Operation::Get)));
            }
            Waiter::Write(change, done) => {
                let _ = done.send(Err(error(change.operation())));
            }
        }
    }
}

/// What a waiter gets when the call it waited on was dropped before answering.
pub(super) fn dropped<T>(operation: Operation, backend: &'static str) -> Result<T> {
    Err(Error::new(
        ErrorKind::Unavailable,
        operation,
        "the call carrying this one was dropped before it answered",
    )
    .with_backend(backend))
}

/// The same error for another waiter, of `operation` (a merged write is an `update`, the
/// waiter's call may have been a `touch`): kind, backend, target and message, with the
/// original's causes as text.
pub(super) fn copy_of(e: &Error, operation: Operation) -> Error {
    let mut copy = Error::new(e.kind(), operation, e.message().to_owned())
        .with_backend(e.backend().to_owned());
    if let Some(target) = e.target() {
        copy = copy.with_target(target);
    }
    let mut causes = Vec::new();
    let mut next = std::error::Error::source(e);
    while let Some(cause) = next {
        causes.push(cause.to_string());
        next = cause.source();
    }
    if !causes.is_empty() {
        copy = copy.with_source(causes.join(": "));
    }
    copy
}
