//! A loaded session's state under the handle's lock ([`State`]), and what `finish` decided to
//! do with it ([`Plan`]).

use std::collections::BTreeSet;

use crate::id::SessionId;
use crate::record::{Patch, Record};
use crate::time::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    /// Not in the store yet; saved by `finish` once it holds data or an owner.
    New,
    /// In the store under `State::id`.
    Existing,
    /// Destroyed by another request while this one ran: changes are dropped.
    Gone,
}

pub(super) struct State {
    pub(super) status: Status,
    /// The stored id (`Existing`), after any rotation.
    pub(super) id: Option<SessionId>,
    /// The current view: loaded record plus this request's changes. For a new session, a
    /// placeholder whose metadata `finish` replaces.
    pub(super) record: Record,
    pub(super) changed: BTreeSet<String>,
    pub(super) removed: BTreeSet<String>,
    pub(super) owner_changed: bool,
    pub(super) id_changed: bool,
    /// `destroy` ran: the client's cookie must go unless a new session is saved.
    pub(super) cleared: bool,
}

impl State {
    pub(super) fn new_session(now: Timestamp) -> Self {
        Self {
            status: Status::New,
            id: None,
            record: Record::new(now),
            changed: BTreeSet::new(),
            removed: BTreeSet::new(),
            owner_changed: false,
            id_changed: false,
            cleared: false,
        }
    }

    pub(super) fn existing(id: SessionId, record: Record) -> Self {
        Self {
            status: Status::Existing,
            id: Some(id),
            record,
            ..Self::new_session(Timestamp::from_millis(0))
        }
    }

    pub(super) fn take_pending(&mut self) -> (BTreeSet<String>, BTreeSet<String>, bool, bool) {
        (
            std::mem::take(&mut self.changed),
            std::mem::take(&mut self.removed),
            std::mem::replace(&mut self.owner_changed, false),
            std::mem::replace(&mut self.id_changed, false),
        )
    }
}

/// What `finish` decided to do, computed under the lock and carried out after it.
pub(super) enum Plan {
    Nothing,
    Clear,
    Create(Record),
    Update {
        id: SessionId,
        patch: Patch,
        expires_at: Option<Timestamp>,
        old_expiry: Option<Timestamp>,
        id_changed: bool,
    },
    Touch {
        id: SessionId,
        expires_at: Option<Timestamp>,
        old_expiry: Option<Timestamp>,
        id_changed: bool,
    },
    Cookie {
        id: SessionId,
        expires_at: Option<Timestamp>,
    },
}
