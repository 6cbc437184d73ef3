//! The writer thread: group commit.
//!
//! Every write operation is sent over a channel to one dedicated thread. The thread takes
//! everything queued (up to [`MAX_BATCH`] operations), applies it in arrival order inside one
//! redb write transaction, commits once with [`Durability::Immediate`] (fsync), and only then
//! answers each caller with that operation's own result. An operation that is refused (`Gone`,
//! `AlreadyExists`, `TooLarge`, `Corrupt`) changes nothing and does not disturb the others; a
//! storage error aborts the whole transaction and every caller of that batch gets it.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use redb::{Database, Durability, ReadableTable, ReadableTableMetadata, Table, WriteTransaction};
use sessionbank_core::{
    Error, Operation, Patch, Record, Result, SessionId, SharedClock, Timestamp,
};
use tokio::sync::oneshot;

use crate::error;
use crate::layout::{self, DecodeError, EXPIRY, OWNERS, SESSIONS};

/// The most operations one write transaction applies.
pub(crate) const MAX_BATCH: usize = 1024;

/// A write operation, as the store hands it to the writer thread.
pub(crate) enum Op {
    /// `set` (`create == false`) or `create`: the record is already encoded.
    Put {
        id: SessionId,
        record: Record,
        bytes: Vec<u8>,
        deadline: i64,
        create: bool,
    },
    Update {
        id: SessionId,
        patch: Patch,
    },
    Touch {
        id: SessionId,
        expires_at: Option<Timestamp>,
    },
    Destroy {
        id: SessionId,
    },
    Rename {
        old: SessionId,
        new: SessionId,
    },
    Clear,
    /// Removes at most `limit` expired sessions.
    CleanupBatch {
        limit: usize,
    },
    DestroyOwnedBy {
        owner: String,
        except: Option<SessionId>,
    },
}

/// What a successful operation answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reply {
    Done,
    Count(u64),
    Cleaned { removed: u64, more: bool },
}

/// One queued operation and where its answer goes.
pub(crate) struct Request {
    pub(crate) operation: Operation,
    pub(crate) op: Op,
    pub(crate) reply: oneshot::Sender<Result<Reply>>,
}

/// What the writer thread needs.
pub(crate) struct Writer {
    pub(crate) db: Arc<Database>,
    pub(crate) dir: PathBuf,
    pub(crate) browser_idle: Duration,
    pub(crate) clock: SharedClock,
    pub(crate) max_record_bytes: usize,
}

/// An operation failed: refused (nothing written by it) or the storage failed (abort the batch).
enum OpError {
    Refused(Error),
    Storage(redb::Error),
}

impl<E: Into<redb::Error>> From<E> for OpError {
    fn from(e: E) -> Self {
        OpError::Storage(e.into())
    }
}

/// A stored value, decoded or not.
enum Stored {
    Ok {
        record: Record,
        indexed: i64,
    },
    Bad {
        err: DecodeError,
        indexed: Option<i64>,
    },
}

/// Counters for the debug log line of one batch.
#[derive(Default)]
struct Tally {
    created: u64,
    destroyed: u64,
    cleaned: u64,
}

struct Tables<'t> {
    sessions: Table<'t, &'static str, &'static [u8]>,
    expiry: Table<'t, (i64, &'static str), ()>,
    owners: Table<'t, (&'static str, &'static str), ()>,
}

impl Writer {
    /// Serves requests until every sender is dropped.
    pub(crate) fn run(self, requests: mpsc::Receiver<Request>) {
        while let Ok(first) = requests.recv() {
            let mut batch = Vec::with_capacity(16);
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match requests.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
            self.commit_batch(batch);
        }
        tracing::debug!(target: "sessionbank::disk", dir = %self.dir.display(), "writer thread stopped");
    }

    fn commit_batch(&self, batch: Vec<Request>) {
        let now = self.clock.now();
        let mut results = Vec::with_capacity(batch.len());
        let mut tally = Tally::default();
        match self.apply_all(&batch, now, &mut results, &mut tally) {
            Ok(()) => {
                if tally.created + tally.destroyed + tally.cleaned > 0 {
                    tracing::debug!(
                        target: "sessionbank::disk",
                        operations = batch.len(),
                        created = tally.created,
                        destroyed = tally.destroyed,
                        cleaned = tally.cleaned,
                        "committed"
                    );
                }
                for (request, result) in batch.into_iter().zip(results) {
                    // The caller may have gone away (cancelled): its write still committed.
                    let _ = request.reply.send(result);
                }
            }
            Err(storage) => {
                let first = batch.first().map_or(Operation::Set, |r| r.operation);
                let shown = error::from_redb(first, &self.dir, storage);
                for request in batch {
                    let err =
                        Error::new(shown.kind(), request.operation, shown.message().to_owned())
                            .with_backend(error::BACKEND)
                            .with_target(error::target(&self.dir))
                            .with_source(shown.chain());
                    let _ = request.reply.send(Err(err));
                }
            }
        }
    }

    fn apply_all(
        &self,
        batch: &[Request],
        now: Timestamp,
        results: &mut Vec<Result<Reply>>,
        tally: &mut Tally,
    ) -> Result<(), redb::Error> {
        let mut tx = self.db.begin_write()?;
        tx.set_durability(Durability::Immediate)?;
        {
            let mut tables = Tables::open(&tx)?;
            for request in batch {
                match self.apply(&mut tables, request.operation, &request.op, now, tally) {
                    Ok(reply) => results.push(Ok(reply)),
                    Err(OpError::Refused(e)) => results.push(Err(e)),
                    Err(OpError::Storage(e)) => return Err(e),
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn live(&self, record: &Record, now: Timestamp) -> bool {
        record.is_live(now, self.browser_idle)
    }

    fn deadline(&self, record: &Record) -> i64 {
        record.deadline(self.browser_idle).as_millis()
    }

    fn corrupt(&self, operation: Operation, err: DecodeError) -> OpError {
        OpError::Refused(error::corrupt(operation, &self.dir, err))
    }

    fn gone(operation: Operation) -> OpError {
        OpError::Refused(Error::gone(operation).with_backend(error::BACKEND))
    }

    fn encode(&self, operation: Operation, record: &Record) -> Result<(Vec<u8>, i64), OpError> {
        let deadline = self.deadline(record);
        let bytes = layout::encode(record, Timestamp::from_millis(deadline))
            .map_err(|e| OpError::Refused(error::encode_failed(operation, &self.dir, e)))?;
        if bytes.len() > self.max_record_bytes {
            return Err(OpError::Refused(error::too_large(
                operation,
                &self.dir,
                bytes.len(),
                self.max_record_bytes,
            )));
        }
        Ok((bytes, deadline))
    }

    fn apply(
        &self,
        t: &mut Tables<'_>,
        operation: Operation,
        op: &Op,
        now: Timestamp,
        tally: &mut Tally,
    ) -> Result<Reply, OpError> {
        match op {
            Op::Put {
                id,
                record,
                bytes,
                deadline,
                create,
            } => {
                let id = id.as_str();
                match t.load(id)? {
                    Some(Stored::Ok { record: old, .. }) if *create && self.live(&old, now) => {
                        return Err(OpError::Refused(
                            Error::already_exists(operation).with_backend(error::BACKEND),
                        ));
                    }
                    Some(Stored::Bad { err, .. }) if *create => {
                        return Err(self.corrupt(operation, err));
                    }
                    Some(old) => t.remove(id, &old)?,
                    None => tally.created += 1,
                }
                t.insert(id, record, bytes, *deadline)?;
                Ok(Reply::Done)
            }
            Op::Update { id, patch } => {
                self.modify_live(t, operation, id.as_str(), now, |record| {
                    patch.apply_to(record, now);
                })
            }
            Op::Touch { id, expires_at } => {
                self.modify_live(t, operation, id.as_str(), now, |record| {
                    record.expires_at = *expires_at;
                    record.last_access = now;
                })
            }
            Op::Destroy { id } => {
                let id = id.as_str();
                if let Some(old) = t.load(id)? {
                    t.remove(id, &old)?;
                    tally.destroyed += 1;
                }
                Ok(Reply::Done)
            }
            Op::Rename { old, new } => self.rename(t, operation, old, new, now),
            Op::Clear => {
                let removed = t.sessions.len()?;
                t.sessions.retain(|_, _| false)?;
                t.expiry.retain(|_, _| false)?;
                t.owners.retain(|_, _| false)?;
                tally.destroyed += removed;
                Ok(Reply::Count(removed))
            }
            Op::CleanupBatch { limit } => {
                let (removed, more) = self.cleanup_batch(t, *limit, now)?;
                tally.cleaned += removed;
                Ok(Reply::Cleaned { removed, more })
            }
            Op::DestroyOwnedBy { owner, except } => {
                let destroyed = self.destroy_owned_by(t, owner, except.as_ref(), now)?;
                tally.destroyed += destroyed;
                Ok(Reply::Count(destroyed))
            }
        }
    }

    /// Changes a live record in place, or answers `Gone` (removing an expired one on the way:
    /// it can never be read again anyway).
    fn modify_live(
        &self,
        t: &mut Tables<'_>,
        operation: Operation,
        id: &str,
        now: Timestamp,
        change: impl FnOnce(&mut Record),
    ) -> Result<Reply, OpError> {
        let stored = match t.load(id)? {
            None => return Err(Self::gone(operation)),
            Some(Stored::Bad { err, .. }) => return Err(self.corrupt(operation, err)),
            Some(stored) => stored,
        };
        let Stored::Ok { record, .. } = &stored else {
            return Err(Self::gone(operation));
        };
        if !self.live(record, now) {
            t.remove(id, &stored)?;
            return Err(Self::gone(operation));
        }
        let mut changed = record.clone();
        change(&mut changed);
        let (bytes, deadline) = self.encode(operation, &changed)?;
        t.remove(id, &stored)?;
        t.insert(id, &changed, &bytes, deadline)?;
        Ok(Reply::Done)
    }

    fn rename(
        &self,
        t: &mut Tables<'_>,
        operation: Operation,
        old: &SessionId,
        new: &SessionId,
        now: Timestamp,
    ) -> Result<Reply, OpError> {
        if old == new {
            return self.modify_live(t, operation, old.as_str(), now, |record| {
                record.last_access = now;
            });
        }
        let target = t.load(new.as_str())?;
        match &target {
            Some(Stored::Ok { record, .. }) if self.live(record, now) => {
                return Err(OpError::Refused(
                    Error::already_exists(operation).with_backend(error::BACKEND),
                ));
            }
            Some(Stored::Bad { .. }) => {
                // The new id holds something unreadable: refuse rather than overwrite it.
                return Err(OpError::Refused(
                    Error::already_exists(operation).with_backend(error::BACKEND),
                ));
            }
            _ => {}
        }
        let source = match t.load(old.as_str())? {
            None => return Err(Self::gone(operation)),
            Some(Stored::Bad { err, .. }) => return Err(self.corrupt(operation, err)),
            Some(source) => source,
        };
        let Stored::Ok { record, .. } = &source else {
            return Err(Self::gone(operation));
        };
        if !self.live(record, now) {
            t.remove(old.as_str(), &source)?;
            return Err(Self::gone(operation));
        }
        let mut moved = record.clone();
        moved.last_access = now;
        let (bytes, deadline) = self.encode(operation, &moved)?;
        t.remove(old.as_str(), &source)?;
        if let Some(stale) = &target {
            t.remove(new.as_str(), stale)?;
        }
        t.insert(new.as_str(), &moved, &bytes, deadline)?;
        Ok(Reply::Done)
    }

    /// Removes up to `limit` expired sessions, walking the expiry index from its start. Returns
    /// how many sessions were removed and whether more expired index entries may remain.
    fn cleanup_batch(
        &self,
        t: &mut Tables<'_>,
        limit: usize,
        now: Timestamp,
    ) -> Result<(u64, bool), OpError> {
        let end = (now.as_millis().saturating_add(1), "");
        let mut due: Vec<(i64, String)> = Vec::with_capacity(limit.min(4096));
        for entry in t.expiry.range::<(i64, &str)>(..end)? {
            let (key, _) = entry?;
            let (deadline, id) = key.value();
            due.push((deadline, id.to_owned()));
            if due.len() >= limit {
                break;
            }
        }
        let more = due.len() >= limit;
        let mut removed = 0;
        for (deadline, id) in due {
            t.expiry.remove((deadline, id.as_str()))?;
            match t.load(&id)? {
                None => {}
                Some(Stored::Ok { record, indexed }) => {
                    if indexed != deadline {
                        continue; // a stale index entry; the record is indexed elsewhere
                    }
                    if self.live(&record, now) {
                        // Live under this store's browser_idle (changed since it was written):
                        // index it again under its real deadline.
                        let (bytes, new_deadline) = self.encode(Operation::Cleanup, &record)?;
                        t.insert(&id, &record, &bytes, new_deadline)?;
                        continue;
                    }
                    t.remove(&id, &Stored::Ok { record, indexed })?;
                    removed += 1;
                }
                Some(Stored::Bad { err, indexed }) if indexed == Some(deadline) => {
                    tracing::warn!(
                        target: "sessionbank::disk",
                        error = %err,
                        "cleanup removed an expired session that no longer decodes"
                    );
                    t.remove(&id, &Stored::Bad { err, indexed })?;
                    removed += 1;
                }
                Some(Stored::Bad { .. }) => {}
            }
        }
        Ok((removed, more))
    }

    fn destroy_owned_by(
        &self,
        t: &mut Tables<'_>,
        owner: &str,
        except: Option<&SessionId>,
        now: Timestamp,
    ) -> Result<u64, OpError> {
        let mut ids = Vec::new();
        for entry in t.owners.range::<(&str, &str)>((owner, "")..)? {
            let (key, _) = entry?;
            let (o, id) = key.value();
            if o != owner {
                break;
            }
            ids.push(id.to_owned());
        }
        let mut destroyed = 0;
        for id in ids {
            if except.is_some_and(|e| e.as_str() == id) {
                continue;
            }
            t.owners.remove((owner, id.as_str()))?;
            if let Some(stored @ Stored::Ok { .. }) = t.load(&id)? {
                let Stored::Ok { record, .. } = &stored else {
                    continue;
                };
                if record.owner.as_deref() != Some(owner) {
                    continue; // stale entry: the session now has another owner
                }
                if self.live(record, now) {
                    destroyed += 1;
                }
                t.remove(&id, &stored)?;
            }
        }
        Ok(destroyed)
    }
}

impl<'t> Tables<'t> {
    fn open(tx: &'t WriteTransaction) -> Result<Self, redb::Error> {
        Ok(Self {
            sessions: tx.open_table(SESSIONS)?,
            expiry: tx.open_table(EXPIRY)?,
            owners: tx.open_table(OWNERS)?,
        })
    }

    fn load(&self, id: &str) -> Result<Option<Stored>, redb::Error> {
        let Some(value) = self.sessions.get(id)? else {
            return Ok(None);
        };
        let bytes = value.value();
        Ok(Some(match layout::decode(bytes) {
            Ok(record) => Stored::Ok {
                record,
                indexed: layout::indexed_deadline(bytes).unwrap_or_default(),
            },
            Err(err) => Stored::Bad {
                err,
                indexed: layout::indexed_deadline(bytes),
            },
        }))
    }

    /// Removes a record and its index entries.
    fn remove(&mut self, id: &str, stored: &Stored) -> Result<(), redb::Error> {
        self.sessions.remove(id)?;
        match stored {
            Stored::Ok { record, indexed } => {
                self.expiry.remove((*indexed, id))?;
                if let Some(owner) = &record.owner {
                    self.owners.remove((owner.as_str(), id))?;
                }
            }
            Stored::Bad { indexed, .. } => {
                if let Some(indexed) = indexed {
                    self.expiry.remove((*indexed, id))?;
                }
            }
        }
        Ok(())
    }

    /// Inserts a record and its index entries (any previous ones must be removed first).
    fn insert(
        &mut self,
        id: &str,
        record: &Record,
        bytes: &[u8],
        deadline: i64,
    ) -> Result<(), redb::Error> {
        self.sessions.insert(id, bytes)?;
        self.expiry.insert((deadline, id), ())?;
        if let Some(owner) = &record.owner {
            self.owners.insert((owner.as_str(), id), ())?;
        }
        Ok(())
    }
}
