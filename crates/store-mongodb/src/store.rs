//! [`MongoStore`]: the [`Store`] implementation over one MongoDB collection.

use std::future::IntoFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures::TryStreamExt;
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{Client, Collection, IndexModel};
use sessionbank_core::{
    Action, Capabilities, Error, ErrorKind, Operation, Page, Patch, Record, Result, SessionId,
    Store, Timestamp,
};

use crate::config::{DEFAULT_TIMEOUT, MongoStoreBuilder};
use crate::error::{self, BACKEND, from_driver, is_duplicate_key};
use crate::layout::{
    self, DEADLINE_FIELD, OWNER_FIELD, OWNER_INDEX_NAME, TTL_INDEX_NAME, date, live, live_id,
};

/// How often `create` and `rename` retry when a concurrent writer changed the document between
/// their steps.
const RACE_RETRIES: usize = 5;

/// A session store in one MongoDB collection, through the official `mongodb` driver.
///
/// Time is the application's: "expired" means `deadline <= now` by this process's clock, and
/// every read filters on it, because MongoDB's TTL monitor removes expired documents only
/// about once a minute. Clones share the driver's connection pool.
///
/// # Concurrency
/// `update` and `touch` are one `update_one` each, filtered by `{_id, deadline > now}` and
/// never an upsert, so concurrent updates of different keys all survive and a destroyed or
/// expired session is never brought back. `rename` runs in a transaction when the server is a
/// replica set member or `mongos`; on a standalone server it is two steps (see
/// [`Store::rename`] below) and [`Capabilities::atomic_rename`] is `false`.
#[derive(Clone)]
pub struct MongoStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    collection: Collection<Document>,
    browser_idle: Duration,
    timeout: Duration,
    target: String,
    transactions: AtomicBool,
}

impl std::fmt::Debug for MongoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoStore")
            .field("target", &self.inner.target)
            .field("collection", &self.inner.collection.namespace().to_string())
            .field(
                "transactions",
                &self.inner.transactions.load(Ordering::Relaxed),
            )
            .finish()
    }
}

impl MongoStore {
    /// Connects to the URL and runs [`setup`](Self::setup).
    ///
    /// # Errors
    ///
    /// As [`MongoStoreBuilder::parse`] and [`MongoStoreBuilder::open`].
    pub async fn connect(url: &str) -> Result<Self> {
        MongoStoreBuilder::parse(url)?.open().await
    }

    /// A store over an application's existing client (sharing its pool). It does not run
    /// [`setup`](Self::setup): call it once, or create the indexes yourself.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo() -> sessionbank_core::Result<()> {
    /// use sessionbank_store_mongodb::{MongoStore, mongodb::Client};
    ///
    /// let client = Client::with_uri_str("mongodb://127.0.0.1/").await.unwrap();
    /// let store = MongoStore::from_client(client, "app", "sessions");
    /// store.setup().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_client(client: Client, database: &str, collection: &str) -> Self {
        let target = format!("mongodb://(client)/{database}");
        Self::new(
            client,
            database,
            collection,
            sessionbank_core::DEFAULT_BROWSER_IDLE,
            DEFAULT_TIMEOUT,
            target,
        )
    }

    /// Sets how long a browser session lives after its last access (default one day).
    #[must_use]
    pub fn with_browser_idle(self, idle: Duration) -> Self {
        let inner = &self.inner;
        Self::new(
            inner.client.clone(),
            &inner.collection.namespace().db,
            inner.collection.name(),
            idle,
            inner.timeout,
            inner.target.clone(),
        )
    }

    fn new(
        client: Client,
        database: &str,
        collection: &str,
        browser_idle: Duration,
        timeout: Duration,
        target: String,
    ) -> Self {
        let collection = client.database(database).collection::<Document>(collection);
        Self {
            inner: Arc::new(Inner {
                client,
                collection,
                browser_idle,
                timeout,
                target,
                transactions: AtomicBool::new(false),
            }),
        }
    }

    pub(crate) async fn from_builder(config: MongoStoreBuilder) -> Result<Self> {
        let target = config.get_target().to_owned();
        let options = ClientOptions::parse(config.get_connection_string())
            .await
            .map_err(|e| from_driver(Action::Connect, &target, e))?;
        let client =
            Client::with_options(options).map_err(|e| from_driver(Action::Connect, &target, e))?;
        Ok(Self::new(
            client,
            config.get_database(),
            config.get_collection(),
            config.get_browser_idle(),
            config.get_timeout(),
            target,
        ))
    }

    /// The driver's client (shared with the store).
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// The collection holding the sessions.
    pub fn collection(&self) -> &Collection<Document> {
        &self.inner.collection
    }

    /// Checks the server and creates the indexes: the TTL index `{deadline: 1}` with
    /// `expireAfterSeconds: 0` and an index on `owner`, each only when missing. It also asks
    /// the server (`hello`) whether it supports transactions, for `rename`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] naming the index when an index of another shape exists on
    /// `deadline` (for example one without `expireAfterSeconds`, or a compound one);
    /// `Unavailable` or `Timeout` when the server cannot be reached.
    pub async fn setup(&self) -> Result<()> {
        let op = Action::Setup;
        let coll = &self.inner.collection;
        let admin = coll.client().database("admin");
        let hello = match self.run(op, admin.run_command(doc! {"hello": 1})).await {
            Ok(reply) => reply,
            // Servers before 4.0.21 / 4.2.10 know only the legacy name.
            Err(e) if e.kind() == ErrorKind::Backend => {
                self.run(op, admin.run_command(doc! {"isMaster": 1}))
                    .await?
            }
            Err(e) => return Err(e),
        };
        let replicated = hello.get_str("setName").is_ok() || hello.get_str("msg") == Ok("isdbgrid");
        self.inner.transactions.store(replicated, Ordering::Relaxed);

        let existing: Vec<IndexModel> = match self.run(op, coll.list_indexes()).await {
            Ok(cursor) => self.run(op, cursor.try_collect()).await?,
            // A collection that does not exist yet has no indexes (NamespaceNotFound).
            Err(e) if e.kind() == ErrorKind::Backend => Vec::new(),
            Err(e) => return Err(e),
        };
        let mut ttl_ok = false;
        let mut owner_ok = false;
        for index in &existing {
            let options = index.options.as_ref();
            let name = options.and_then(|o| o.name.clone()).unwrap_or_default();
            if index.keys.contains_key(DEADLINE_FIELD) {
                let expire = options.and_then(|o| o.expire_after);
                if layout::is_ttl_shape(&index.keys, expire) {
                    ttl_ok = true;
                } else {
                    return Err(error::config(
                        op,
                        &self.inner.target,
                        format!(
                            "the collection {} has an index `{name}` on `deadline` of another \
                             shape (keys {}, expireAfterSeconds {:?}); the store needs \
                             {{deadline: 1}} with expireAfterSeconds 0: drop that index and \
                             the store creates its own",
                            coll.namespace(),
                            index.keys,
                            expire.map(|d| d.as_secs())
                        ),
                    ));
                }
            }
            if index.keys.len() == 1 && index.keys.contains_key(OWNER_FIELD) {
                owner_ok = true;
            }
        }
        if !ttl_ok {
            let model = IndexModel::builder()
                .keys(doc! { DEADLINE_FIELD: 1 })
                .options(
                    IndexOptions::builder()
                        .name(TTL_INDEX_NAME.to_owned())
                        .expire_after(Duration::ZERO)
                        .build(),
                )
                .build();
            self.run(op, coll.create_index(model)).await?;
        }
        if !owner_ok {
            let model = IndexModel::builder()
                .keys(doc! { OWNER_FIELD: 1 })
                .options(
                    IndexOptions::builder()
                        .name(OWNER_INDEX_NAME.to_owned())
                        .build(),
                )
                .build();
            self.run(op, coll.create_index(model)).await?;
        }
        Ok(())
    }

    /// Runs a driver call with the store's timeout, mapping its error.
    async fn run<T>(
        &self,
        op: impl Into<Action> + Copy,
        call: impl IntoFuture<Output = mongodb::error::Result<T>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.inner.timeout, call.into_future()).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(from_driver(op, &self.inner.target, e)),
            Err(_) => Err(error::timed_out(op, &self.inner.target, self.inner.timeout)),
        }
    }

    /// Like [`run`](Self::run), but a duplicate key error comes back as `Ok(Err(()))`.
    async fn run_insert(
        &self,
        op: impl Into<Action> + Copy,
        call: impl IntoFuture<Output = mongodb::error::Result<mongodb::results::InsertOneResult>>,
    ) -> Result<std::result::Result<(), ()>> {
        match tokio::time::timeout(self.inner.timeout, call.into_future()).await {
            Ok(Ok(_)) => Ok(Ok(())),
            Ok(Err(e)) if is_duplicate_key(&e) => Ok(Err(())),
            Ok(Err(e)) => Err(from_driver(op, &self.inner.target, e)),
            Err(_) => Err(error::timed_out(op, &self.inner.target, self.inner.timeout)),
        }
    }

    fn document(&self, op: Operation, id: &SessionId, record: &Record) -> Result<Document> {
        layout::to_document(op, &self.inner.target, id, record, self.inner.browser_idle)
    }

    fn gone(&self, op: Operation) -> Error {
        Error::gone(op).with_backend(BACKEND)
    }

    fn exists(&self, op: Operation) -> Error {
        Error::already_exists(op).with_backend(BACKEND)
    }

    async fn find_live(&self, op: Operation, filter: Document) -> Result<Vec<(SessionId, Record)>> {
        let cursor = self.run(op, self.inner.collection.find(filter)).await?;
        let docs: Vec<Document> = self.run(op, cursor.try_collect()).await?;
        self.decode_all(op, docs)
    }

    fn decode_all(&self, op: Operation, docs: Vec<Document>) -> Result<Vec<(SessionId, Record)>> {
        let target = &self.inner.target;
        docs.into_iter()
            .map(|d| {
                let id = layout::id_of(op, target, &d)?;
                Ok((id, layout::from_document(op, target, d)?))
            })
            .collect()
    }

    /// `create` as an insert, or a replace of an expired document with the same id.
    async fn insert_over_expired(
        &self,
        op: Operation,
        id: &SessionId,
        doc: Document,
    ) -> Result<()> {
        let coll = &self.inner.collection;
        for _ in 0..RACE_RETRIES {
            if self
                .run_insert(op, coll.insert_one(doc.clone()))
                .await?
                .is_ok()
            {
                return Ok(());
            }
            let now = Timestamp::now();
            let filter = doc! { "_id": id.as_str(), DEADLINE_FIELD: { "$lte": date(now) } };
            let replaced = self.run(op, coll.replace_one(filter, doc.clone())).await?;
            if replaced.matched_count == 1 {
                return Ok(());
            }
            // Either a live session holds the id, or the expired one vanished meanwhile (the
            // TTL monitor): look, and insert again in the second case.
            let exists = self
                .run(
                    op,
                    coll.find_one(doc! { "_id": id.as_str() })
                        .projection(doc! {"_id": 1}),
                )
                .await?;
            if exists.is_some() {
                return Err(self.exists(op));
            }
        }
        Err(self.exists(op))
    }

    /// `rename` in a transaction (replica sets and `mongos`).
    async fn rename_in_transaction(&self, old: &SessionId, new: &SessionId) -> Result<()> {
        let op = Operation::Rename;
        let coll = &self.inner.collection;
        let mut session = self.run(op, self.inner.client.start_session()).await?;
        for attempt in 0..RACE_RETRIES {
            self.run(op, session.start_transaction()).await?;
            let now = Timestamp::now();
            let result: Result<std::result::Result<(), Error>> = async {
                let filter = live_id(old, now);
                let Some(found) = self
                    .run(op, coll.find_one_and_delete(filter).session(&mut session))
                    .await?
                else {
                    return Ok(Err(self.gone(op)));
                };
                let mut record = layout::from_document(op, &self.inner.target, found)?;
                record.last_access = now;
                let doc = self.document(op, new, &record)?;
                let stale = doc! { "_id": new.as_str(), DEADLINE_FIELD: { "$lte": date(now) } };
                self.run(op, coll.delete_one(stale).session(&mut session))
                    .await?;
                let inserted = self
                    .run_insert(op, coll.insert_one(doc).session(&mut session))
                    .await?;
                if inserted.is_err() {
                    return Ok(Err(self.exists(op)));
                }
                Ok(Ok(()))
            }
            .await;
            match result {
                Ok(Ok(())) => match self.run(op, session.commit_transaction()).await {
                    Ok(()) => return Ok(()),
                    Err(e) if e.kind() == ErrorKind::Unavailable && attempt + 1 < RACE_RETRIES => {}
                    Err(e) => return Err(e),
                },
                Ok(Err(refusal)) => {
                    let _ = self.run(op, session.abort_transaction()).await;
                    return Err(refusal);
                }
                Err(e) => {
                    let _ = self.run(op, session.abort_transaction()).await;
                    if e.kind() != ErrorKind::Unavailable || attempt + 1 == RACE_RETRIES {
                        return Err(e);
                    }
                }
            }
        }
        Err(Error::new(
            ErrorKind::Unavailable,
            op,
            "the rename transaction kept conflicting",
        )
        .with_backend(BACKEND))
    }

    /// `rename` without transactions: insert the new document, then delete the old one only if
    /// it is still exactly what was copied; if it changed meanwhile, undo the insert and try
    /// again (a destroyed old session makes the rename fail with `Gone`).
    async fn rename_in_two_steps(&self, old: &SessionId, new: &SessionId) -> Result<()> {
        let op = Operation::Rename;
        let coll = &self.inner.collection;
        for _ in 0..RACE_RETRIES {
            let now = Timestamp::now();
            let filter = live_id(old, now);
            let Some(found) = self.run(op, coll.find_one(filter)).await? else {
                return Err(self.gone(op));
            };
            // The guard: every field as read (the embedded `data` compares as a whole).
            let guard = found.clone();
            let mut record = layout::from_document(op, &self.inner.target, found)?;
            record.last_access = now;
            let doc = self.document(op, new, &record)?;
            self.insert_over_expired(op, new, doc.clone()).await?;
            let deleted = self.run(op, coll.delete_one(guard)).await?;
            if deleted.deleted_count == 1 {
                return Ok(());
            }
            // The old session changed or vanished meanwhile: take the copy back (only if it is
            // still our copy) and look again.
            self.run(op, coll.delete_one(doc)).await?;
        }
        Err(Error::new(
            ErrorKind::Unavailable,
            op,
            "the session kept changing during the rename; try again",
        )
        .with_backend(BACKEND))
    }
}

impl MongoStoreBuilder {
    /// Connects, and runs [`MongoStore::setup`] (the TTL and owner indexes).
    ///
    /// # Errors
    ///
    /// `Config` for a connection string the driver refuses or an index of another shape on
    /// `deadline`; `Unavailable` or `Timeout` when the server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo() -> sessionbank_core::Result<()> {
    /// use sessionbank_store_mongodb::MongoStoreBuilder;
    ///
    /// let store = MongoStoreBuilder::parse("mongodb://127.0.0.1/app")?.open().await?;
    /// # let _ = store;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn open(self) -> Result<MongoStore> {
        let store = MongoStore::from_builder(self).await?;
        store.setup().await?;
        Ok(store)
    }
}

#[async_trait]
impl Store for MongoStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new()
            .with_list(true)
            .with_owner_index(true)
            .with_atomic_rename(self.inner.transactions.load(Ordering::Relaxed))
            .with_native_expiry(true)
            .with_durable(true)
    }

    async fn get(&self, id: &SessionId) -> Result<Option<Record>> {
        let op = Operation::Get;
        let filter = live_id(id, Timestamp::now());
        match self.run(op, self.inner.collection.find_one(filter)).await? {
            Some(doc) => Ok(Some(layout::from_document(op, &self.inner.target, doc)?)),
            None => Ok(None),
        }
    }

    async fn set(&self, id: &SessionId, record: &Record) -> Result<()> {
        let op = Operation::Set;
        let doc = self.document(op, id, record)?;
        self.run(
            op,
            self.inner
                .collection
                .replace_one(doc! {"_id": id.as_str()}, doc)
                .upsert(true),
        )
        .await?;
        Ok(())
    }

    async fn create(&self, id: &SessionId, record: &Record) -> Result<()> {
        let op = Operation::Create;
        let doc = self.document(op, id, record)?;
        self.insert_over_expired(op, id, doc).await
    }

    async fn update(&self, id: &SessionId, patch: &Patch) -> Result<()> {
        let op = Operation::Update;
        let now = Timestamp::now();
        let (mut set, unset) = layout::patch_documents(op, &self.inner.target, patch, now)?;
        let coll = &self.inner.collection;
        let filter = live_id(id, now);
        let build = |set: Document| {
            let mut update = doc! { "$set": set };
            if !unset.is_empty() {
                update.insert("$unset", unset.clone());
            }
            update
        };
        match patch.expires_at {
            Some(expires_at) => {
                let deadline = expires_at.unwrap_or(now + self.inner.browser_idle);
                set.insert("expires_at", expires_at.map(date));
                set.insert(DEADLINE_FIELD, date(deadline));
                let done = self.run(op, coll.update_one(filter, build(set))).await?;
                if done.matched_count == 0 {
                    return Err(self.gone(op));
                }
            }
            None => {
                // Keep the expiry. A session with one keeps its deadline; a browser session's
                // deadline moves to now + browser_idle. Two filtered updates, neither an upsert.
                let mut with_expiry = filter.clone();
                with_expiry.insert("expires_at", doc! { "$type": "date" });
                let done = self
                    .run(op, coll.update_one(with_expiry, build(set.clone())))
                    .await?;
                if done.matched_count == 1 {
                    return Ok(());
                }
                let mut browser = filter;
                browser.insert("expires_at", Bson::Null);
                set.insert(DEADLINE_FIELD, date(now + self.inner.browser_idle));
                let done = self.run(op, coll.update_one(browser, build(set))).await?;
                if done.matched_count == 0 {
                    return Err(self.gone(op));
                }
            }
        }
        Ok(())
    }

    async fn touch(&self, id: &SessionId, expires_at: Option<Timestamp>) -> Result<()> {
        let op = Operation::Touch;
        let now = Timestamp::now();
        let filter = live_id(id, now);
        let deadline = expires_at.unwrap_or(now + self.inner.browser_idle);
        let update = doc! { "$set": {
            "expires_at": expires_at.map(date),
            "last_access": date(now),
            DEADLINE_FIELD: date(deadline),
        }};
        let done = self
            .run(op, self.inner.collection.update_one(filter, update))
            .await?;
        if done.matched_count == 0 {
            return Err(self.gone(op));
        }
        Ok(())
    }

    async fn destroy(&self, id: &SessionId) -> Result<()> {
        self.run(
            Operation::Destroy,
            self.inner.collection.delete_one(doc! {"_id": id.as_str()}),
        )
        .await?;
        Ok(())
    }

    /// With transactions (replica set, `mongos`): find-and-delete the old document, insert the
    /// new one, commit; atomic. Without (a standalone server): insert the new document first,
    /// then delete the old one only if it is unchanged, so a failure between the steps leaves
    /// both ids (never neither), and a concurrent update or destroy of the old id is never lost
    /// or undone.
    async fn rename(&self, old: &SessionId, new: &SessionId) -> Result<()> {
        if old == new {
            return match self.get(old).await? {
                Some(_) => self.touch_keep(old).await,
                None => Err(self.gone(Operation::Rename)),
            };
        }
        if self.inner.transactions.load(Ordering::Relaxed) {
            self.rename_in_transaction(old, new).await
        } else {
            self.rename_in_two_steps(old, new).await
        }
    }

    async fn all(&self, cursor: Option<&str>, limit: usize) -> Result<Page> {
        let op = Operation::All;
        let mut filter = match cursor {
            Some(after) => doc! { "_id": { "$gt": after } },
            None => Document::new(),
        };
        filter.extend(live(Timestamp::now()));
        if limit == 0 {
            return Ok(Page {
                sessions: Vec::new(),
                next: cursor.map(str::to_owned),
            });
        }
        let wanted = i64::try_from(limit).unwrap_or(i64::MAX);
        let found = self
            .run(
                op,
                self.inner
                    .collection
                    .find(filter)
                    .sort(doc! {"_id": 1})
                    .limit(wanted),
            )
            .await?;
        let docs: Vec<Document> = self.run(op, found.try_collect()).await?;
        let sessions = self.decode_all(op, docs)?;
        let next = if sessions.len() == limit {
            sessions.last().map(|(id, _)| id.as_str().to_owned())
        } else {
            None
        };
        Ok(Page { sessions, next })
    }

    async fn length(&self) -> Result<u64> {
        self.run(
            Operation::Length,
            self.inner
                .collection
                .count_documents(live(Timestamp::now())),
        )
        .await
    }

    async fn clear(&self) -> Result<u64> {
        let done = self
            .run(Operation::Clear, self.inner.collection.delete_many(doc! {}))
            .await?;
        Ok(done.deleted_count)
    }

    async fn cleanup(&self) -> Result<u64> {
        let filter = doc! { DEADLINE_FIELD: { "$lte": date(Timestamp::now()) } };
        let done = self
            .run(
                Operation::Cleanup,
                self.inner.collection.delete_many(filter),
            )
            .await?;
        Ok(done.deleted_count)
    }

    async fn owned_by(&self, owner: &str) -> Result<Vec<(SessionId, Record)>> {
        let mut filter = doc! { OWNER_FIELD: owner };
        filter.extend(live(Timestamp::now()));
        self.find_live(Operation::OwnedBy, filter).await
    }

    async fn destroy_owned_by(&self, owner: &str, except: Option<&SessionId>) -> Result<u64> {
        let mut filter = doc! { OWNER_FIELD: owner };
        if let Some(keep) = except {
            filter.insert("_id", doc! { "$ne": keep.as_str() });
        }
        let done = self
            .run(
                Operation::DestroyOwnedBy,
                self.inner.collection.delete_many(filter),
            )
            .await?;
        Ok(done.deleted_count)
    }
}

impl MongoStore {
    /// `rename(id, id)`: only `last_access` moves.
    async fn touch_keep(&self, id: &SessionId) -> Result<()> {
        let op = Operation::Rename;
        let now = Timestamp::now();
        let filter = live_id(id, now);
        let update = doc! { "$set": { "last_access": date(now) } };
        let done = self
            .run(op, self.inner.collection.update_one(filter, update))
            .await?;
        if done.matched_count == 0 {
            return Err(self.gone(op));
        }
        Ok(())
    }
}
