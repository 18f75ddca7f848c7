//! The embedded store: SQLite in WAL mode with `synchronous=FULL`, so an acknowledged write
//! survives `kill -9` and power loss, and several processes (a running `klozeo serve` and a
//! `klozeo account create`) can share one data directory.
//!
//! Tables and indexes of the store port map onto two SQLite tables: `items` (one row per item)
//! and `idx` (one row per secondary-index entry), kept in step inside the same transaction.
//! Leads are also mirrored into a table with typed columns and real indexes
//! (`super::sqlite_leads`), which serves list requests through [`LeadIndex`].
//!
//! Writes use group commit: transactions that arrive while one commits wait, then commit
//! together in one SQLite transaction with one fsync, each inside its own savepoint so a
//! failing condition undoes only its own writes. Reads run on a small pool of read-only
//! connections (WAL lets them proceed while the writer commits).

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::sqlite_leads;
use crate::error::Error;
use crate::ports::{
    Clock, Cond, Item, Key, LeadIndex, LeadScan, Page, Position, QueryReq, SkCond, Store,
    StoreError, SystemClock, Table, WriteOp, check_transaction,
};

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "klozeo.db";

/// Read-only connections for long reads (lists, scans, exports), opened next to the writer of
/// a file database.
const READERS: usize = 4;
/// Read-only connections for short reads (see [`SHORT_READ_ITEMS`]): a read runs inline on a
/// runtime worker, so there is one per worker of a two-core machine; a short read that finds
/// both busy goes to the long readers.
const SHORT_READERS: usize = 2;
/// Reads of at most this many items (keys, or a range's limit) are short enough to run on the
/// caller's thread (see `SqliteStore::with_reader_short`). Above an account's 101 scoring rules
/// (at most 100, read with one more to tell), which every lead write reads.
const SHORT_READ_ITEMS: usize = 128;
const _: () = assert!(crate::domain::rule::MAX_RULES < SHORT_READ_ITEMS);
/// Settings of each long-read connection: up to 2 GiB of the file memory-mapped (SQLite caps it
/// at its compile-time maximum) and SQLite's default 2 MiB page cache. A filtered list walks an
/// index and looks each candidate up in `lead_rows` and `items`; the map serves those pages
/// from the OS cache without a copy each. The page cache only holds what the map does not serve
/// (pages still in the write-ahead log, pages past the first 2 GiB). At 16 MiB the four caches
/// filled to 64 MiB on the first export of a 1,000,000-lead (3.8 GB) store, over the export's
/// 32 MB memory budget.
const READER_PRAGMAS: &str = "PRAGMA mmap_size=2147483648; PRAGMA cache_size=-2048;";
/// Settings of each short-read connection: no map, a 16 MiB page cache. After every commit,
/// SQLite drops a connection's page cache and, on a mapped connection, unmaps the whole file
/// on its next read (`sqlite3PagerSharedLock`); the unmap and its TLB shoot-downs were a
/// tenth of the server's CPU under concurrent creates, each of which reads a key, an account
/// and a few dedup entries right after someone's commit. A short read touches a few pages:
/// copying them costs less than remapping the file.
const SHORT_READER_PRAGMAS: &str = "PRAGMA mmap_size=0; PRAGMA cache_size=-16384;";

/// Transactions waiting for the next group commit (one, or the ordered transactions of one
/// [`Store::transact_many`] call), and where their outcomes go.
struct Pending {
    groups: Vec<Vec<WriteOp>>,
    done: tokio::sync::oneshot::Sender<Vec<Result<(), StoreError>>>,
}

/// The embedded store.
#[derive(Clone)]
pub struct SqliteStore {
    /// The one writer connection (also the reader of an in-memory database).
    conn: Arc<Mutex<Connection>>,
    /// Read-only connections of a file database for long reads; empty in memory.
    readers: Arc<Vec<Mutex<Connection>>>,
    /// Read-only connections of a file database for short reads; empty in memory.
    short_readers: Arc<Vec<Mutex<Connection>>>,
    next_reader: Arc<AtomicUsize>,
    /// Transactions waiting for the next group commit.
    pending: Arc<Mutex<Vec<Pending>>>,
    /// Whether a blocking task is committing groups (see [`SqliteStore::commit_queued`]).
    committing: Arc<std::sync::atomic::AtomicBool>,
    /// SQLite commits made, and transactions they carried (see [`SqliteStore::commit_stats`]).
    stats: Arc<[std::sync::atomic::AtomicU64; 2]>,
    clock: Arc<dyn Clock>,
    /// Whether lead items also get their secondary-index rows in `idx` (see
    /// [`SqliteStore::set_lead_index_entries`]); shared by the clones of the store.
    lead_index_entries: Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStore")
    }
}

fn table_name(t: Table) -> &'static str {
    crate::schema::table_def(t).suffix
}

fn db_err(e: rusqlite::Error) -> Error {
    match e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) =>
        {
            Error::Unavailable("the embedded store is busy; please retry".into())
        }
        other => Error::internal(format!("embedded store: {other}")),
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store under `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, Error> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            Error::internal(format!(
                "cannot create data dir {}: {e}",
                data_dir.display()
            ))
        })?;
        let path = data_dir.join(DB_FILE);
        let conn = Connection::open(&path).map_err(db_err)?;
        let mut store = Self::init(conn)?;
        let open_reader = |pragmas: &str| -> Result<Mutex<Connection>, Error> {
            let r = Connection::open_with_flags(
                &path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(db_err)?;
            r.busy_timeout(std::time::Duration::from_secs(10))
                .map_err(db_err)?;
            r.set_prepared_statement_cache_capacity(256);
            r.execute_batch(pragmas).map_err(db_err)?;
            Ok(Mutex::new(r))
        };
        let readers = (0..READERS)
            .map(|_| open_reader(READER_PRAGMAS))
            .collect::<Result<Vec<_>, _>>()?;
        let short_readers = (0..SHORT_READERS)
            .map(|_| open_reader(SHORT_READER_PRAGMAS))
            .collect::<Result<Vec<_>, _>>()?;
        store.short_readers = Arc::new(short_readers);
        store.readers = Arc::new(readers);
        Ok(store)
    }

    /// Uses `clock` to decide which items have expired (tests move time by hand).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Keeps (`true`) or skips (`false`, the default) the `idx` rows of lead items.
    ///
    /// The embedded store answers every list from `lead_rows` through [`LeadIndex`], so the
    /// status, source, city and 14 sort-index rows each lead would otherwise write (17 index
    /// inserts and their `idx_by_item` entries per lead, most of a bulk load's write cost) are
    /// read by nobody. An item under a lead key whose body is not a lead (hand-made test
    /// items) has no typed row and keeps its index rows. Only a caller that hides [`Store::lead_index`] and runs the key-range
    /// planner over this store (the planner tests, wrappers that do not forward it) needs them,
    /// and asks for them here before writing any lead. Other tables keep their index rows.
    pub fn set_lead_index_entries(&self, keep: bool) {
        self.lead_index_entries.store(keep, Ordering::Relaxed);
    }

    /// An in-memory store for tests.
    pub fn in_memory() -> Result<Self, Error> {
        Self::init(Connection::open_in_memory().map_err(db_err)?)
    }

    // The writer keeps a 32 MiB page cache (SQLite's default is 2 MiB): a lead write touches
    // the items table and some twenty `lead_rows` indexes, and a bulk load's CPU per lead grew
    // by half over 100,000 leads, likely as those indexes outgrew the default (benchmarks.md).
    // The write-ahead log is checkpointed every 16,384 pages (64 MiB) instead of SQLite's
    // 1,000: a batch of 500 leads dirties thousands of index pages, so the default copied them
    // into the database file (and fsynced it) after nearly every commit; a longer log copies
    // an index page once for many commits (bulk load +20 %, benchmarks.md). Not longer: the
    // readers map the database file, but read pages still in the log with a copy, and with
    // 256 MiB of log the reads after a bulk load were about a fifth slower. Durability is the
    // log's fsync, as before.
    fn init(mut conn: Connection) -> Result<Self, Error> {
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(db_err)?;
        conn.set_prepared_statement_cache_capacity(256);
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=FULL;
             PRAGMA temp_store=MEMORY;
             PRAGMA cache_size=-32768;
             PRAGMA wal_autocheckpoint=16384;
             PRAGMA journal_size_limit=67108864;
             PRAGMA foreign_keys=OFF;",
        )
        .map_err(db_err)?;
        conn.execute_batch(ITEM_TABLES).map_err(db_err)?;
        sqlite_leads::prepare(&mut conn).map_err(db_err)?;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            readers: Arc::new(Vec::new()),
            short_readers: Arc::new(Vec::new()),
            next_reader: Arc::new(AtomicUsize::new(0)),
            pending: Arc::new(Mutex::new(Vec::new())),
            committing: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            stats: Arc::new(Default::default()),
            clock: Arc::new(SystemClock),
            lead_index_entries: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        })
    }

    /// How many SQLite commits this store made and how many transactions they carried: the
    /// difference is what group commit saved (each commit is one fsync).
    pub fn commit_stats(&self) -> (u64, u64) {
        (
            self.stats[0].load(Ordering::Relaxed),
            self.stats[1].load(Ordering::Relaxed),
        )
    }

    /// Runs `f` on a long-read connection: the first free one of the pool, else the next in
    /// turn (the writer when there is no pool). The first free one rather than the next: each
    /// connection pays for a commit (its page cache dropped, its map undone) on its first read
    /// after it, so reads kept on few connections pay it fewer times.
    async fn with_reader<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection, i64) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        if self.readers.is_empty() {
            return Ok(self.with_conn(move |c, now| Ok(f(c, now)?)).await?);
        }
        let readers = self.readers.clone();
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        let now = self.clock.now_secs();
        tokio::task::spawn_blocking(move || {
            let n = readers.len();
            let free = readers.iter().find_map(|r| r.try_lock().ok());
            let guard = match free {
                Some(g) => g,
                None => readers[start % n]
                    .lock()
                    .map_err(|_| Error::internal("embedded store lock poisoned"))?,
            };
            f(&guard, now)
        })
        .await
        .map_err(Error::internal)?
    }

    /// [`SqliteStore::with_reader`] for a read known to be short (a key lookup, a bounded
    /// range): run right here on a free read connection when there is one. Handing a read of
    /// a few microseconds to the blocking pool costs more than the read (a thread wake-up and
    /// a context switch each way; under concurrent creates those were most of the server's
    /// CPU), so short reads only go there when every read connection is busy. The short-read
    /// connections come first (see [`SHORT_READER_PRAGMAS`]), the first free one of them for
    /// the reason given at [`SqliteStore::with_reader`].
    async fn with_reader_short<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection, i64) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let mut conns = self.short_readers.iter().chain(self.readers.iter());
        if let Some(guard) = conns.find_map(|r| r.try_lock().ok()) {
            return f(&guard, self.clock.now_secs());
        }
        self.with_reader(f).await
    }

    /// A short read here, a long one on the blocking pool.
    async fn read<T: Send + 'static>(
        &self,
        short: bool,
        f: impl FnOnce(&Connection, i64) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        if short {
            self.with_reader_short(f).await
        } else {
            self.with_reader(f).await
        }
    }

    /// Commits every waiting transaction, if any, as one group: one SQLite transaction and one
    /// fsync, each member in its own savepoint so that a failed condition (or any error) undoes
    /// that member's writes only. Whoever holds the writer next commits what arrived meanwhile,
    /// so a caller whose transaction was already taken by an earlier group finds nothing to do.
    fn commit_pending(&self) {
        let Ok(mut conn) = self.conn.lock() else {
            self.fail_pending(Error::internal("embedded store lock poisoned"));
            return;
        };
        let group = match self.pending.lock() {
            Ok(mut p) => std::mem::take(&mut *p),
            Err(_) => return,
        };
        if group.is_empty() {
            return;
        }
        let now = self.clock.now_secs();
        let write = WriteCtx {
            now,
            lead_index_entries: self.lead_index_entries.load(Ordering::Relaxed),
        };
        let outcomes = match commit_group(&mut conn, &group, write) {
            Ok(outcomes) => {
                self.stats[0].fetch_add(1, Ordering::Relaxed);
                let carried: usize = outcomes.iter().map(Vec::len).sum();
                self.stats[1].fetch_add(carried as u64, Ordering::Relaxed);
                outcomes
            }
            // Only the first transaction of a `transact_many` is said to have failed: the
            // others were not tried.
            Err(e) => group
                .iter()
                .map(|_| vec![Err(StoreError::Other(e.clone()))])
                .collect(),
        };
        for (p, outcome) in group.into_iter().zip(outcomes) {
            // A caller that went away no longer needs its outcome; its write stands.
            let _ = p.done.send(outcome);
        }
    }

    fn fail_pending(&self, e: Error) {
        if let Ok(mut p) = self.pending.lock() {
            for p in std::mem::take(&mut *p) {
                let _ = p.done.send(vec![Err(StoreError::Other(e.clone()))]);
            }
        }
    }

    async fn with_conn<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection, i64) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.conn.clone();
        let now = self.clock.now_secs();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| Error::internal("embedded store lock poisoned"))?;
            f(&mut guard, now)
        })
        .await
        .map_err(|e| StoreError::Other(Error::internal(e)))?
    }
}

impl SqliteStore {
    /// Queues `groups` for the next group commit and waits for their outcomes.
    ///
    /// One blocking task at a time commits: it takes whatever is queued, commits it as one
    /// group, and goes on while more arrived meanwhile. A writer that finds it running only
    /// queues and waits, instead of taking a blocking thread of its own to queue behind the
    /// connection's lock (under 16 concurrent creates those parked threads and their wake-ups
    /// were most of the server's CPU).
    async fn commit_queued(
        &self,
        groups: Vec<Vec<WriteOp>>,
    ) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        let (done, outcome) = tokio::sync::oneshot::channel();
        self.pending
            .lock()
            .map_err(|_| Error::internal("embedded store lock poisoned"))?
            .push(Pending { groups, done });
        if !self.committing.swap(true, Ordering::AcqRel) {
            let me = self.clone();
            // Not awaited: the outcome comes through `done`, and a caller that goes away
            // must not stop the commits of the others.
            tokio::task::spawn_blocking(move || me.commit_until_idle());
        }
        outcome
            .await
            .map_err(|_| StoreError::Other(Error::internal("embedded store: commit abandoned")))
    }

    /// Commits groups until none is waiting, then gives up the committer's role. A writer
    /// that queued after the last look but before the role was given up finds the role taken
    /// and relies on this loop: hence the look again after giving it up.
    fn commit_until_idle(&self) {
        // A panic while committing must not leave the role taken, or every later write
        // would wait forever.
        struct Release<'a>(&'a std::sync::atomic::AtomicBool);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    self.0.store(false, Ordering::Release);
                }
            }
        }
        let _release = Release(&self.committing);
        loop {
            self.commit_pending();
            self.committing.store(false, Ordering::Release);
            let waiting = self.pending.lock().map(|p| !p.is_empty()).unwrap_or(false);
            if !waiting || self.committing.swap(true, Ordering::AcqRel) {
                return;
            }
        }
    }
}

/// The tables of the store port's item model: every item, and its index entries.
const ITEM_TABLES: &str = "
    CREATE TABLE IF NOT EXISTS items(
        tbl TEXT NOT NULL, pk TEXT NOT NULL, sk TEXT NOT NULL,
        body BLOB NOT NULL, version INTEGER NOT NULL,
        counter INTEGER NOT NULL DEFAULT 0, expires_at INTEGER,
        PRIMARY KEY(tbl, pk, sk)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS idx(
        tbl TEXT NOT NULL, idx TEXT NOT NULL, ipk TEXT NOT NULL, isk TEXT NOT NULL,
        pk TEXT NOT NULL, sk TEXT NOT NULL,
        PRIMARY KEY(tbl, idx, ipk, isk, pk, sk)) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS idx_by_item ON idx(tbl, pk, sk);";

const ITEM_COLS: &str = "i.pk, i.sk, i.body, i.version, i.counter, i.expires_at";

fn row_to_item(row: &rusqlite::Row<'_>) -> rusqlite::Result<Item> {
    Ok(Item {
        key: Key::new(row.get::<_, String>(0)?, row.get::<_, String>(1)?),
        body: row.get(2)?,
        version: row.get::<_, i64>(3)? as u64,
        index_keys: Vec::new(),
        counter: row.get(4)?,
        expires_at: row.get(5)?,
    })
}

fn live(expires_at: Option<i64>, now: i64) -> bool {
    expires_at.is_none_or(|t| t > now)
}

/// What a write needs to know besides its transaction.
#[derive(Debug, Clone, Copy)]
struct WriteCtx {
    /// The store's clock, for expiry.
    now: i64,
    /// See [`SqliteStore::set_lead_index_entries`].
    lead_index_entries: bool,
}

/// The live item at `key` (version, counter), and whether any row, live or expired, is stored
/// there (when none is, there is nothing to delete before writing it).
fn current(
    tx: &Connection,
    tbl: &str,
    key: &Key,
    now: i64,
) -> rusqlite::Result<(Option<(u64, i64)>, bool)> {
    let row: Option<(i64, i64, Option<i64>)> = tx
        .prepare_cached(
            "SELECT version, counter, expires_at FROM items WHERE tbl=?1 AND pk=?2 AND sk=?3",
        )?
        .query_row(params![tbl, key.pk, key.sk], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    let stored = row.is_some();
    Ok((
        row.filter(|(_, _, exp)| live(*exp, now))
            .map(|(v, c, _)| (v as u64, c)),
        stored,
    ))
}

fn cond_holds(cond: Cond, cur: Option<(u64, i64)>) -> bool {
    match cond {
        Cond::Always => true,
        Cond::NotExists => cur.is_none(),
        Cond::Exists => cur.is_some(),
        Cond::Version(v) => cur.is_some_and(|(cv, _)| cv == v),
    }
}

/// Commits a group of transactions (see [`SqliteStore::commit_pending`]); the outcomes of each
/// member's transactions (up to the first that failed), or the error that kept the whole group
/// from committing.
fn commit_group(
    conn: &mut Connection,
    group: &[Pending],
    write: WriteCtx,
) -> Result<Vec<Vec<Result<(), StoreError>>>, Error> {
    // Checked first, each member's writes are only made once its conditions hold, so a
    // failed condition needs no savepoint to undo. Savepoints were a fifth of the writer's
    // time: SQLite copies every page a savepoint first touches into its statement journal.
    // Any SQLite error in a write drops this attempt (the transaction rolls back) and the
    // group runs again with a savepoint per member, so that only the member that failed
    // fails.
    match commit_group_checked(conn, group, write) {
        Ok(outcomes) => Ok(outcomes),
        Err(_) => commit_group_savepoints(conn, group, write),
    }
}

/// The group with every member's conditions checked before its writes; any error fails it.
fn commit_group_checked(
    conn: &mut Connection,
    group: &[Pending],
    write: WriteCtx,
) -> Result<Vec<Vec<Result<(), StoreError>>>, Error> {
    let adds = std::cell::RefCell::new(GroupCounters::default());
    commit_group_with(
        conn,
        group,
        |tx, ops| {
            let mut adds = adds.borrow_mut();
            let mut found = Vec::with_capacity(ops.len());
            for (i, op) in ops.iter().enumerate() {
                match adds.check(tx, op, write.now).map_err(db_err)? {
                    Some(f) => found.push(f),
                    None => return Ok(Err(StoreError::ConditionFailed(i))),
                }
            }
            for (op, f) in ops.iter().zip(found) {
                adds.write(tx, op, f, write).map_err(db_err)?;
            }
            Ok(Ok(()))
        },
        |tx| adds.borrow_mut().flush_all(tx).map_err(db_err),
    )
}

/// A counter's `Add`s made by the members of a group so far and not yet written.
#[derive(Debug, Clone, Copy)]
struct PendingAdds {
    /// What the first `Add`'s check found in the database.
    found: Found,
    /// The sum of the `Add`s.
    delta: i64,
    /// How many `Add`s (each one bumps the version, as it would alone).
    count: u64,
}

impl PendingAdds {
    /// What a check at the counter's key would find had every `Add` been written.
    fn now_found(&self) -> Found {
        let cur = match self.found.cur {
            Some((v, c)) => Some((v + self.count, c + self.delta)),
            None => Some((self.count, self.delta)),
        };
        Found { cur, stored: true }
    }
}

/// The counter `Add`s of one group commit, summed per counter and written once at the end.
///
/// Every create adds to about ten analytics counters of its account, and a group carries up
/// to one create per connection: one `UPDATE` per counter and group instead of one per
/// create and counter. Exact all the same: an `Add`'s limit is checked against the sum so
/// far, and any other write to a counter's key (or check of it) writes the sum first.
#[derive(Default)]
struct GroupCounters<'a> {
    // Every write of a group looks its key up here, hashing three strings; foldhash (seeded
    // per map, as the batch view's maps are) costs a fraction of SipHash on these keys.
    pending: foldhash::HashMap<(&'static str, &'a str, &'a str), PendingAdds>,
}

impl<'a> GroupCounters<'a> {
    /// [`check_op`], answering an `Add` from the sums and writing the sums of any other
    /// write's key first.
    fn check(
        &mut self,
        tx: &Connection,
        op: &'a WriteOp,
        now: i64,
    ) -> rusqlite::Result<Option<Found>> {
        let (table, key) = op.target();
        let at = (table_name(table), key.pk.as_str(), key.sk.as_str());
        match (op, self.pending.get(&at)) {
            (WriteOp::Add { delta, max, .. }, Some(p)) => {
                let found = p.now_found();
                let total = found.cur.map_or(0, |(_, c)| c);
                Ok((!max.is_some_and(|m| total + delta > m)).then_some(found))
            }
            (WriteOp::Add { .. }, None) => check_op(tx, op, now),
            (_, _) => {
                self.flush(tx, at)?;
                check_op(tx, op, now)
            }
        }
    }

    /// [`write_op`], holding an `Add` back until [`GroupCounters::flush_all`].
    fn write(
        &mut self,
        tx: &Connection,
        op: &'a WriteOp,
        found: Found,
        write: WriteCtx,
    ) -> rusqlite::Result<()> {
        let (table, key) = op.target();
        let at = (table_name(table), key.pk.as_str(), key.sk.as_str());
        match op {
            WriteOp::Add { delta, .. } => {
                let p = self.pending.entry(at).or_insert(PendingAdds {
                    found,
                    delta: 0,
                    count: 0,
                });
                p.delta += delta;
                p.count += 1;
                Ok(())
            }
            _ => {
                self.flush(tx, at)?;
                write_op(tx, op, found, write)
            }
        }
    }

    /// Writes the sum held for one key, if any.
    fn flush(
        &mut self,
        tx: &Connection,
        at: (&'static str, &'a str, &'a str),
    ) -> rusqlite::Result<()> {
        match self.pending.remove(&at) {
            Some(p) => write_sum(tx, at, p),
            None => Ok(()),
        }
    }

    /// Writes every sum held; the group commits after it.
    fn flush_all(&mut self, tx: &Connection) -> rusqlite::Result<()> {
        for (at, p) in self.pending.drain() {
            write_sum(tx, at, p)?;
        }
        Ok(())
    }
}

/// Writes `p.count` `Add`s to the counter at `at` as one row change.
fn write_sum(
    tx: &Connection,
    (tbl, pk, sk): (&'static str, &str, &str),
    p: PendingAdds,
) -> rusqlite::Result<()> {
    let (version, counter) = p.now_found().cur.expect("a summed counter is live");
    match p.found.cur {
        Some(_) => tx
            .prepare_cached(
                "UPDATE items SET counter=?4, version=?5 WHERE tbl=?1 AND pk=?2 AND sk=?3",
            )?
            .execute(params![tbl, pk, sk, counter, version as i64])?,
        None => {
            if p.found.stored {
                delete_row(tx, tbl, &Key::new(pk, sk))?;
            }
            tx.prepare_cached(
                "INSERT INTO items(tbl, pk, sk, body, version, counter, expires_at)
                 VALUES (?1, ?2, ?3, x'', ?5, ?4, NULL)",
            )?
            .execute(params![tbl, pk, sk, counter, version as i64])?
        }
    };
    Ok(())
}

/// The group with each member in a savepoint: an error in one member's writes undoes that
/// member's writes only.
fn commit_group_savepoints(
    conn: &mut Connection,
    group: &[Pending],
    write: WriteCtx,
) -> Result<Vec<Vec<Result<(), StoreError>>>, Error> {
    commit_group_with(
        conn,
        group,
        |tx, ops| {
            savepoint(tx, "SAVEPOINT member")?;
            let mut outcome = Ok(());
            for (i, op) in ops.iter().enumerate() {
                let done = check_op(tx, op, write.now)
                    .and_then(|f| f.map(|f| write_op(tx, op, f, write)).transpose());
                match done {
                    Ok(Some(())) => {}
                    Ok(None) => {
                        outcome = Err(StoreError::ConditionFailed(i));
                        break;
                    }
                    Err(e) => {
                        outcome = Err(StoreError::Other(db_err(e)));
                        break;
                    }
                }
            }
            if outcome.is_err() {
                savepoint(tx, "ROLLBACK TO member")?;
            }
            savepoint(tx, "RELEASE member")?;
            Ok(outcome)
        },
        |_| Ok(()),
    )
}

/// Runs every member's transactions through `run` in one SQLite transaction, then `finish`,
/// and commits it. `run` answers a transaction's outcome, or an error that fails the whole
/// group.
fn commit_group_with<'a>(
    conn: &mut Connection,
    group: &'a [Pending],
    mut run: impl FnMut(&Connection, &'a [WriteOp]) -> Result<Result<(), StoreError>, Error>,
    finish: impl FnOnce(&Connection) -> Result<(), Error>,
) -> Result<Vec<Vec<Result<(), StoreError>>>, Error> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_err)?;
    let mut outcomes = Vec::with_capacity(group.len());
    for p in group {
        let mut member = Vec::with_capacity(p.groups.len());
        for ops in &p.groups {
            let outcome = run(&tx, ops)?;
            let failed = outcome.is_err();
            member.push(outcome);
            // The transactions of one `transact_many` stop at the first that fails.
            if failed {
                break;
            }
        }
        outcomes.push(member);
    }
    finish(&tx)?;
    tx.commit().map_err(db_err)?;
    Ok(outcomes)
}

/// Runs a savepoint statement from the statement cache (a group commit runs three per member).
fn savepoint(tx: &Connection, sql: &str) -> Result<(), Error> {
    tx.prepare_cached(sql)
        .and_then(|mut s| s.execute([]))
        .map(drop)
        .map_err(db_err)
}

fn delete_row(tx: &Connection, tbl: &str, key: &Key) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM items WHERE tbl=?1 AND pk=?2 AND sk=?3")?
        .execute(params![tbl, key.pk, key.sk])?;
    tx.prepare_cached("DELETE FROM idx WHERE tbl=?1 AND pk=?2 AND sk=?3")?
        .execute(params![tbl, key.pk, key.sk])?;
    if sqlite_leads::is_lead_key(tbl, &key.sk) {
        sqlite_leads::remove(tx, &key.pk, &key.sk)?;
    }
    Ok(())
}

/// What the check of one write found at its key: the live item's (version, counter), and
/// whether any row, live or expired, is stored there.
#[derive(Debug, Clone, Copy)]
struct Found {
    cur: Option<(u64, i64)>,
    stored: bool,
}

/// Reads what `op`'s condition needs; `None` when the condition fails. Reads only, so a
/// member whose condition fails has nothing to undo.
fn check_op(tx: &Connection, op: &WriteOp, now: i64) -> rusqlite::Result<Option<Found>> {
    let (table, key) = op.target();
    let (cur, stored) = current(tx, table_name(table), key, now)?;
    let holds = match op {
        WriteOp::Put { cond, .. } | WriteOp::Delete { cond, .. } | WriteOp::Check { cond, .. } => {
            cond_holds(*cond, cur)
        }
        WriteOp::Add { delta, max, .. } => {
            !max.is_some_and(|m| cur.map_or(0, |(_, c)| c) + delta > m)
        }
    };
    Ok(holds.then_some(Found { cur, stored }))
}

/// Makes `op`'s change, given what [`check_op`] found at its key.
fn write_op(tx: &Connection, op: &WriteOp, found: Found, write: WriteCtx) -> rusqlite::Result<()> {
    match op {
        WriteOp::Put { table, item, .. } => {
            let tbl = table_name(*table);
            // The index and lead rows of a key are written with its item: no item, none of
            // them (a new lead skips five deletes).
            if found.stored {
                delete_row(tx, tbl, &item.key)?;
            }
            tx.prepare_cached(
                "INSERT INTO items(tbl, pk, sk, body, version, counter, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                tbl,
                item.key.pk,
                item.key.sk,
                item.body,
                item.version as i64,
                item.counter,
                item.expires_at
            ])?;
            // A lead with its typed row is listed from that row: its index rows would be read
            // by nobody (see `SqliteStore::set_lead_index_entries`).
            let typed = sqlite_leads::is_lead_key(tbl, &item.key.sk)
                && sqlite_leads::insert(tx, &item.key.pk, &item.key.sk, &item.body)?;
            let index_keys: &[crate::ports::IndexKey] = if typed && !write.lead_index_entries {
                &[]
            } else {
                &item.index_keys
            };
            for ik in index_keys {
                tx.prepare_cached(
                    "INSERT INTO idx(tbl, idx, ipk, isk, pk, sk) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![
                    tbl,
                    ik.index,
                    ik.pk,
                    ik.sk,
                    item.key.pk,
                    item.key.sk
                ])?;
            }
        }
        WriteOp::Delete { table, key, .. } => {
            if found.stored {
                delete_row(tx, table_name(*table), key)?;
            }
        }
        WriteOp::Add {
            table, key, delta, ..
        } => {
            let tbl = table_name(*table);
            let next = found.cur.map_or(0, |(_, c)| c) + delta;
            match found.cur {
                Some(_) => tx
                    .prepare_cached(
                        "UPDATE items SET counter=?4, version=version+1
                         WHERE tbl=?1 AND pk=?2 AND sk=?3",
                    )?
                    .execute(params![tbl, key.pk, key.sk, next])?,
                None => {
                    if found.stored {
                        delete_row(tx, tbl, key)?;
                    }
                    tx.prepare_cached(
                        "INSERT INTO items(tbl, pk, sk, body, version, counter, expires_at)
                         VALUES (?1, ?2, ?3, x'', 1, ?4, NULL)",
                    )?
                    .execute(params![tbl, key.pk, key.sk, next])?
                }
            };
        }
        WriteOp::Check { .. } => {}
    }
    Ok(())
}

/// The smallest string above every string that starts with `prefix`, or `None` if there is none
/// (the prefix is empty or made only of U+10FFFF).
///
/// SQLite compares TEXT under BINARY collation with `memcmp` over UTF-8, and UTF-8 byte order is
/// code-point order with no encoded char a prefix of another. So the strings starting with
/// `prefix` are exactly those from `prefix` up to (excluding) `prefix` with its last char
/// replaced by the next one; trailing U+10FFFF chars have no next one and are dropped first.
/// Incrementing the last *byte* instead could give invalid UTF-8 (`\x7f` + 1, `\xbf` + 1); a
/// char successor keeps the bound a valid TEXT value, so it compares against the key columns
/// and their primary key as they are.
pub(super) fn prefix_upper_bound(prefix: &str) -> Option<String> {
    for (i, c) in prefix.char_indices().rev() {
        let next = match c {
            '\u{D7FF}' => Some('\u{E000}'),
            c => char::from_u32(u32::from(c) + 1),
        };
        if let Some(next) = next {
            let mut bound = String::with_capacity(i + next.len_utf8());
            bound.push_str(&prefix[..i]);
            bound.push(next);
            return Some(bound);
        }
    }
    None
}

fn sk_clause(col: &str, sk: &SkCond, args: &mut Vec<SqlValue>) -> String {
    let mut push = |v: &str| {
        args.push(SqlValue::Text(v.to_string()));
        format!("?{}", args.len())
    };
    match sk {
        SkCond::Any => String::new(),
        // A key range, so SQLite seeks in the primary key instead of testing every key of the
        // partition (a dedup lookup would otherwise read the whole account).
        SkCond::BeginsWith(p) => match prefix_upper_bound(p) {
            Some(upper) => {
                let a = push(p);
                let b = push(&upper);
                format!(" AND {col} >= {a} AND {col} < {b}")
            }
            None => format!(" AND {col} >= {}", push(p)),
        },
        SkCond::Between(a, b) => {
            let a = push(a);
            let b = push(b);
            format!(" AND {col} >= {a} AND {col} <= {b}")
        }
        SkCond::Gt(v) => format!(" AND {col} > {}", push(v)),
        SkCond::Ge(v) => format!(" AND {col} >= {}", push(v)),
        SkCond::Lt(v) => format!(" AND {col} < {}", push(v)),
        SkCond::Le(v) => format!(" AND {col} <= {}", push(v)),
    }
}

/// One end of a key range: the key, and whether it is itself in the range.
type Bound = Option<(String, bool)>;

/// The tighter of two lower (`lower = true`) or upper bounds.
fn tighter(a: Bound, b: Bound, lower: bool) -> Bound {
    match (a, b) {
        (None, x) | (x, None) => x,
        (Some((ka, ia)), Some((kb, ib))) => Some(match ka.cmp(&kb) {
            std::cmp::Ordering::Equal => (ka, ia && ib),
            std::cmp::Ordering::Greater if lower => (ka, ia),
            std::cmp::Ordering::Less if !lower => (ka, ia),
            _ => (kb, ib),
        }),
    }
}

/// The key condition and the resume position as one range with at most one bound at each end.
/// SQLite seeks on a single lower bound: given `sk >= prefix AND sk > resume`, it seeks to the
/// prefix and tests every key up to the resume point, so every later page of a long partition
/// would rescan it from the start.
fn range_clause(
    col: &str,
    sk: &SkCond,
    resume: Option<&str>,
    descending: bool,
    args: &mut Vec<SqlValue>,
) -> String {
    let incl = |v: &str| Some((v.to_string(), true));
    let excl = |v: &str| Some((v.to_string(), false));
    let (mut lower, mut upper): (Bound, Bound) = match sk {
        SkCond::Any => (None, None),
        SkCond::BeginsWith(p) => (incl(p), prefix_upper_bound(p).map(|u| (u, false))),
        SkCond::Between(a, b) => (incl(a), incl(b)),
        SkCond::Gt(v) => (excl(v), None),
        SkCond::Ge(v) => (incl(v), None),
        SkCond::Lt(v) => (None, excl(v)),
        SkCond::Le(v) => (None, incl(v)),
    };
    if let Some(r) = resume {
        if descending {
            upper = tighter(upper, excl(r), false);
        } else {
            lower = tighter(lower, excl(r), true);
        }
    }
    let mut sql = String::new();
    for (bound, op_in, op_ex) in [(lower, ">=", ">"), (upper, "<=", "<")] {
        if let Some((key, inclusive)) = bound {
            args.push(SqlValue::Text(key));
            let op = if inclusive { op_in } else { op_ex };
            sql.push_str(&format!(" AND {col} {op} ?{}", args.len()));
        }
    }
    sql
}

/// The SQL and arguments of a query; the last column is the index sort key (NULL on the base
/// table). Expired items are filtered in SQL so that `LIMIT` counts live items only: a page is
/// short only at the end of the range, as the port promises.
fn query_sql(req: &QueryReq, now: i64) -> (String, Vec<SqlValue>) {
    let tbl = table_name(req.table);
    let dir = if req.descending { "DESC" } else { "ASC" };
    let cmp = if req.descending { "<" } else { ">" };
    let mut args: Vec<SqlValue> = vec![SqlValue::Text(tbl.into()), SqlValue::Text(req.pk.clone())];
    let mut sql = match req.index {
        None => {
            let resume = req.start_after.as_ref().map(|p| p.key.sk.as_str());
            format!(
                "SELECT {ITEM_COLS}, NULL FROM items i WHERE i.tbl=?1 AND i.pk=?2{}",
                range_clause("i.sk", &req.sk, resume, req.descending, &mut args)
            )
        }
        Some(index) => {
            args.push(SqlValue::Text(index.into()));
            let mut sql = format!(
                "SELECT {ITEM_COLS}, x.isk FROM idx x JOIN items i
                   ON i.tbl = x.tbl AND i.pk = x.pk AND i.sk = x.sk
                 WHERE x.tbl=?1 AND x.ipk=?2 AND x.idx=?3{}",
                sk_clause("x.isk", &req.sk, &mut args)
            );
            if let Some(pos) = &req.start_after {
                let isk = pos
                    .index
                    .as_ref()
                    .map(|(_, s)| s.clone())
                    .unwrap_or_default();
                args.push(SqlValue::Text(isk));
                let a = args.len();
                args.push(SqlValue::Text(pos.key.pk.clone()));
                args.push(SqlValue::Text(pos.key.sk.clone()));
                sql.push_str(&format!(
                    " AND (x.isk, x.pk, x.sk) {cmp} (?{a}, ?{}, ?{})",
                    a + 1,
                    a + 2
                ));
            }
            sql
        }
    };
    args.push(SqlValue::Integer(now));
    sql.push_str(&format!(
        " AND (i.expires_at IS NULL OR i.expires_at > ?{})",
        args.len()
    ));
    match req.index {
        None => sql.push_str(&format!(" ORDER BY i.sk {dir}")),
        Some(_) => sql.push_str(&format!(" ORDER BY x.isk {dir}, x.pk {dir}, x.sk {dir}")),
    }
    // The limit is written into the SQL, not bound: SQLite plans with a bound LIMIT's value
    // and then expires the statement whenever it is bound again, so every run of a cached
    // query would be parsed and planned anew (most of a bulk load's dedup lookups).
    sql.push_str(&format!(" LIMIT {}", req.limit));
    (sql, args)
}

fn run_query(conn: &Connection, req: &QueryReq, now: i64) -> Result<Page, Error> {
    if req.limit == 0 {
        return Ok(Page {
            items: Vec::new(),
            last: None,
        });
    }
    let (sql, args) = query_sql(req, now);
    let mut stmt = conn.prepare_cached(&sql).map_err(db_err)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(args), |r| {
            Ok((row_to_item(r)?, r.get::<_, Option<String>>(6)?))
        })
        .map_err(db_err)?;
    let mut items = Vec::new();
    let mut last_isk = None;
    for row in rows {
        let (item, isk) = row.map_err(db_err)?;
        items.push(item);
        last_isk = isk;
    }
    let last = match items.last() {
        Some(item) if items.len() == req.limit as usize => Some(Position {
            key: item.key.clone(),
            index: last_isk.map(|s| (req.pk.clone(), s)),
        }),
        _ => None,
    };
    Ok(Page { items, last })
}

#[async_trait]
impl Store for SqliteStore {
    async fn get(&self, table: Table, key: &Key) -> Result<Option<Item>, Error> {
        let key = key.clone();
        self.with_reader_short(move |c, now| {
            let item = c
                .prepare_cached(&format!(
                    "SELECT {ITEM_COLS} FROM items i WHERE i.tbl=?1 AND i.pk=?2 AND i.sk=?3"
                ))
                .map_err(db_err)?
                .query_row(params![table_name(table), key.pk, key.sk], row_to_item)
                .optional()
                .map_err(db_err)?;
            Ok(item.filter(|i| live(i.expires_at, now)))
        })
        .await
    }

    async fn batch_get(&self, table: Table, keys: &[Key]) -> Result<Vec<Item>, Error> {
        let short = keys.len() <= SHORT_READ_ITEMS;
        let keys = keys.to_vec();
        let res = self
            .read(short, move |c, now| {
                let mut stmt = c
                    .prepare_cached(&format!(
                        "SELECT {ITEM_COLS} FROM items i WHERE i.tbl=?1 AND i.pk=?2 AND i.sk=?3"
                    ))
                    .map_err(db_err)?;
                let mut out = Vec::with_capacity(keys.len());
                for k in &keys {
                    if let Some(item) = stmt
                        .query_row(params![table_name(table), k.pk, k.sk], row_to_item)
                        .optional()
                        .map_err(db_err)?
                        && live(item.expires_at, now)
                    {
                        out.push(item);
                    }
                }
                Ok(out)
            })
            .await?;
        Ok(res)
    }

    async fn query(&self, req: &QueryReq) -> Result<Page, Error> {
        let short = req.limit as usize <= SHORT_READ_ITEMS;
        let req = req.clone();
        self.read(short, move |c, now| run_query(c, &req, now))
            .await
    }

    async fn query_many(&self, reqs: &[QueryReq]) -> Result<Vec<Page>, Error> {
        let short = reqs.iter().map(|r| r.limit as usize).sum::<usize>() <= SHORT_READ_ITEMS;
        let reqs = reqs.to_vec();
        self.read(short, move |c, now| {
            reqs.iter().map(|r| run_query(c, r, now)).collect()
        })
        .await
    }

    async fn scan(
        &self,
        table: Table,
        start_after: Option<Key>,
        limit: u32,
    ) -> Result<Page, Error> {
        Ok(self
            .with_conn(move |c, now| {
                let (pk, sk) = start_after.map_or((String::new(), String::new()), |k| (k.pk, k.sk));
                let mut stmt = c
                    .prepare_cached(&format!(
                        "SELECT {ITEM_COLS} FROM items i WHERE i.tbl=?1 AND (i.pk, i.sk) > (?2, ?3)
                         ORDER BY i.pk, i.sk LIMIT ?4"
                    ))
                    .map_err(db_err)?;
                let rows = stmt
                    .query_map(
                        params![table_name(table), pk, sk, i64::from(limit)],
                        row_to_item,
                    )
                    .map_err(db_err)?;
                let mut items = Vec::new();
                let mut last = None;
                let mut read = 0u32;
                for row in rows {
                    let item = row.map_err(db_err)?;
                    read += 1;
                    last = Some(Position {
                        key: item.key.clone(),
                        index: None,
                    });
                    if live(item.expires_at, now) {
                        items.push(item);
                    }
                }
                Ok(Page {
                    items,
                    last: if read >= limit { last } else { None },
                })
            })
            .await?)
    }

    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        self.transact_many(vec![ops]).await.pop().unwrap_or(Ok(()))
    }

    async fn transact_many(&self, groups: Vec<Vec<WriteOp>>) -> Vec<Result<(), StoreError>> {
        // Groups are checked before anything is queued; one that fails its check ends the list
        // there, as a failed condition would.
        let mut queued = Vec::with_capacity(groups.len());
        let mut refused = None;
        for ops in groups {
            if let Err(e) = check_transaction(&ops) {
                refused = Some(Err(StoreError::Other(e)));
                break;
            }
            queued.push(ops);
        }
        let tried = queued.len();
        let mut out = if queued.iter().all(Vec::is_empty) {
            // Empty groups commit trivially, without a write to the file.
            (0..tried).map(|_| Ok(())).collect()
        } else {
            match self.commit_queued(queued).await {
                Ok(o) => o,
                Err(e) => vec![Err(e)],
            }
        };
        if let Some(r) = refused
            && out.len() == tried
            && out.iter().all(Result::is_ok)
        {
            out.push(r);
        }
        out
    }

    fn lead_index(&self) -> Option<&dyn LeadIndex> {
        Some(self)
    }

    fn finds_leads_by_name_city(&self) -> bool {
        true
    }

    fn writes_lead_index_keys(&self) -> bool {
        self.lead_index_entries.load(Ordering::Relaxed)
    }

    async fn leads_by_name_city(
        &self,
        partition: &str,
        name_fold: &str,
        city_fold: &str,
        limit: u32,
    ) -> Result<Vec<String>, Error> {
        let (pk, name, city) = (
            partition.to_string(),
            name_fold.to_string(),
            city_fold.to_string(),
        );
        self.read(true, move |c, _| {
            sqlite_leads::by_name_city(c, &pk, &name, &city, limit).map_err(db_err)
        })
        .await
    }
}

#[async_trait]
impl LeadIndex for SqliteStore {
    async fn scan_leads(&self, scan: LeadScan<'_>) -> Result<Vec<Vec<u8>>, Error> {
        if scan.limit == 0 {
            return Ok(Vec::new());
        }
        // The scan borrows; the blocking pool needs owned data.
        let partition = scan.partition.to_string();
        let filters = scan.filters.clone();
        let sort = scan.sort.clone();
        let after = scan.after.map(|(v, id)| (v.clone(), id.to_string()));
        let limit = scan.limit;
        self.with_reader(move |c, _| {
            let scan = LeadScan {
                partition: &partition,
                filters: &filters,
                sort: &sort,
                after: after.as_ref().map(|(v, id)| (v, id.as_str())),
                limit,
            };
            sqlite_leads::scan(c, &scan).map_err(db_err)
        })
        .await
    }

    async fn attribute_names(&self, partition: &str) -> Result<Vec<String>, Error> {
        let partition = partition.to_string();
        self.with_reader(move |c, _| sqlite_leads::attribute_names(c, &partition).map_err(db_err))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::IndexKey;

    #[test]
    fn prefix_upper_bounds_are_valid_utf8_successors() {
        assert_eq!(prefix_upper_bound("P#"), Some("P$".into()));
        assert_eq!(prefix_upper_bound("P#é"), Some("P#ê".into()));
        // Incrementing the last byte would give invalid UTF-8 in these two.
        assert_eq!(prefix_upper_bound("a\u{7F}"), Some("a\u{80}".into()));
        assert_eq!(prefix_upper_bound("a\u{BF}"), Some("a\u{C0}".into()));
        assert_eq!(prefix_upper_bound("x€"), Some("x\u{20AD}".into()));
        assert_eq!(prefix_upper_bound("x\u{D7FF}"), Some("x\u{E000}".into()));
        assert_eq!(prefix_upper_bound("x\u{FFFF}"), Some("x\u{10000}".into()));
        assert_eq!(prefix_upper_bound("x😀"), Some("x😁".into()));
        assert_eq!(
            prefix_upper_bound("x\u{10FFFF}\u{10FFFF}"),
            Some("y".into())
        );
        assert_eq!(prefix_upper_bound("\u{10FFFF}"), None);
        assert_eq!(prefix_upper_bound(""), None);
    }

    const KEYS: &[&str] = &[
        "a",
        "a\u{7F}",
        "a\u{7F}b",
        "a\u{80}",
        "a\u{BF}",
        "a\u{BF}\u{BF}",
        "a\u{C0}",
        "aé",
        "aéz",
        "aê",
        "a€",
        "a€€",
        "a\u{20AD}",
        "a\u{D7FF}",
        "a\u{D7FF}x",
        "a\u{E000}",
        "a\u{FFFF}",
        "a😀",
        "a😀x",
        "a😁",
        "a\u{10FFFF}",
        "a\u{10FFFF}\u{10FFFF}",
        "a\u{10FFFF}\u{10FFFF}z",
        "b",
        "\u{10FFFF}",
        "\u{10FFFF}a",
    ];

    fn store_with_keys() -> SqliteStore {
        let store = SqliteStore::in_memory().unwrap();
        {
            let conn = store.conn.lock().unwrap();
            for (i, k) in KEYS.iter().enumerate() {
                let mut item = Item::new(Key::new("p", *k), b"{}".to_vec());
                item.index_keys.push(IndexKey {
                    index: "by_city",
                    pk: "ip".into(),
                    sk: (*k).to_string(),
                });
                apply(&conn, &put(item));
                // Expired neighbours, in the base table and the index, must never show.
                let gone_sk = format!("{k}~{i}");
                let mut gone = Item::new(Key::new("p", gone_sk.clone()), Vec::new());
                gone.expires_at = Some(1);
                gone.index_keys.push(IndexKey {
                    index: "by_city",
                    pk: "ip".into(),
                    sk: gone_sk,
                });
                apply(&conn, &put(gone));
            }
        }
        store
    }

    fn apply(conn: &Connection, op: &WriteOp) {
        let found = check_op(conn, op, 0).unwrap().expect("the condition holds");
        write_op(conn, op, found, at(0)).unwrap();
    }

    fn at(now: i64) -> WriteCtx {
        WriteCtx {
            now,
            lead_index_entries: true,
        }
    }

    fn put(item: Item) -> WriteOp {
        WriteOp::Put {
            table: Table::Leads,
            item,
            cond: Cond::Always,
        }
    }

    fn req(index: Option<&'static str>, prefix: &str) -> QueryReq {
        QueryReq {
            table: Table::Leads,
            index,
            pk: if index.is_some() { "ip" } else { "p" }.into(),
            sk: SkCond::BeginsWith(prefix.into()),
            start_after: None,
            descending: false,
            limit: 1000,
        }
    }

    #[test]
    fn prefix_queries_return_exactly_the_keys_with_the_prefix() {
        let store = store_with_keys();
        let conn = store.conn.lock().unwrap();
        let mut prefixes: Vec<String> = vec![String::new()];
        for k in KEYS {
            for (i, c) in k.char_indices() {
                prefixes.push(k[..i + c.len_utf8()].to_string());
            }
        }
        for prefix in &prefixes {
            let mut want: Vec<&str> = KEYS
                .iter()
                .copied()
                .filter(|k| k.starts_with(prefix.as_str()))
                .collect();
            want.sort_unstable();
            for index in [None, Some("by_city")] {
                let page = run_query(&conn, &req(index, prefix), 10).unwrap();
                let got: Vec<&str> = page.items.iter().map(|i| i.key.sk.as_str()).collect();
                assert_eq!(got, want, "prefix {prefix:?} on {index:?}");
            }
        }
    }

    /// The detail lines of SQLite's plan for a query.
    fn plan(conn: &Connection, req: &QueryReq) -> Vec<String> {
        let (sql, args) = query_sql(req, 0);
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        stmt.query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn prefix_queries_seek_a_key_range_in_the_primary_key() {
        let store = store_with_keys();
        let conn = store.conn.lock().unwrap();
        let base = plan(&conn, &req(None, "P#+331234#"));
        assert_eq!(
            base,
            ["SEARCH i USING PRIMARY KEY (tbl=? AND pk=? AND sk>? AND sk<?)"],
            "{base:?}"
        );
        let index = plan(&conn, &req(Some("by_city"), "aé"));
        assert_eq!(
            index,
            [
                "SEARCH x USING PRIMARY KEY (tbl=? AND idx=? AND ipk=? AND isk>? AND isk<?)",
                "SEARCH i USING PRIMARY KEY (tbl=? AND pk=? AND sk=?)"
            ],
            "{index:?}"
        );
        // Resuming and descending order keep the seek (no scan, no sort).
        let mut r = req(None, "P#");
        r.descending = true;
        r.start_after = Some(Position {
            key: Key::new("p", "P#5"),
            index: None,
        });
        for line in plan(&conn, &r) {
            assert!(line.starts_with("SEARCH i USING PRIMARY KEY"), "{line}");
            assert!(line.contains("sk>?") && line.contains("sk<?"), "{line}");
        }
    }

    #[test]
    fn pages_skip_expired_items_without_coming_up_short() {
        let store = store_with_keys();
        let conn = store.conn.lock().unwrap();
        let mut r = req(None, "a");
        r.limit = 5;
        let mut seen = Vec::new();
        loop {
            let page = run_query(&conn, &r, 10).unwrap();
            let n = page.items.len();
            seen.extend(page.items.into_iter().map(|i| i.key.sk));
            match page.last {
                Some(p) => {
                    assert_eq!(n, 5);
                    assert_eq!(Some(&p.key.sk), seen.last());
                    r.start_after = Some(p);
                }
                None => {
                    assert!(n < 5);
                    break;
                }
            }
        }
        let mut want: Vec<&str> = KEYS
            .iter()
            .copied()
            .filter(|k| k.starts_with('a'))
            .collect();
        want.sort_unstable();
        assert_eq!(seen, want);
    }
}

#[cfg(test)]
mod upgrade_tests {
    use super::*;

    /// A database written when name + city lookups were items loses those items once on
    /// opening, and nothing else: not the items beside them in key order, not the leads.
    #[test]
    fn opening_drops_the_old_name_city_items_only() {
        let dir = std::env::temp_dir().join(format!("klozeo-upgrade-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let tbl = crate::schema::table_def(Table::Leads).suffix;
        let sks = [
            "L#cl_1",
            "N#cl_1#note_1",
            "NB#x",
            "NC#00ff#cl_1",
            "NC#ab#cl_2",
            "ND#y",
        ];
        {
            let store = SqliteStore::open(&dir).unwrap();
            let conn = store.conn.lock().unwrap();
            for sk in sks {
                conn.execute(
                    "INSERT INTO items(tbl, pk, sk, body, version) VALUES (?1, 'A#1', ?2, x'7b7d', 1)",
                    params![tbl, sk],
                )
                .unwrap();
            }
            conn.execute_batch("PRAGMA user_version = 1").unwrap();
        }
        let left = |store: &SqliteStore| -> Vec<String> {
            let conn = store.conn.lock().unwrap();
            conn.prepare("SELECT sk FROM items WHERE pk = 'A#1' ORDER BY sk")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let store = SqliteStore::open(&dir).unwrap();
        assert_eq!(left(&store), ["L#cl_1", "N#cl_1#note_1", "NB#x", "ND#y"]);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[cfg(test)]
mod layout_tests {
    use super::*;
    use crate::domain::filter::FilterSet;
    use crate::domain::lead::Lead;
    use crate::domain::query::{Sort, SortField, SortOrder};

    /// The first ten leads of partition `A#1` in the order given, unfiltered.
    async fn listed(store: &SqliteStore, field: SortField, order: SortOrder) -> Vec<Lead> {
        let filters = FilterSet::parse::<&str>(&[]).unwrap();
        let sort = Sort { field, order };
        let bodies = store
            .scan_leads(LeadScan {
                partition: "A#1",
                filters: &filters,
                sort: &sort,
                after: None,
                limit: 10,
            })
            .await
            .unwrap();
        bodies
            .iter()
            .map(|b| serde_json::from_slice(b).unwrap())
            .collect()
    }

    /// A database whose lead rows were keyed by the partition key (layout 2) gets its lead
    /// tables rebuilt from the items on opening, once: every list, attribute name and name +
    /// city lookup answers from the new tables, and a write after it lands in them.
    #[tokio::test]
    async fn opening_an_older_layout_rebuilds_the_lead_tables_from_the_items() {
        let dir = std::env::temp_dir().join(format!("klozeo-layout-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let tbl = crate::schema::table_def(Table::Leads).suffix;
        let lead = |id: &str, name: &str, attrs: &str| {
            format!(
                r#"{{"id":"{id}","name":"{name}","source":"test","city":"Paris","tags":[],
                "attributes":[{attrs}],"created_at":1,"updated_at":1,"last_interaction_at":1}}"#
            )
        };
        {
            // What the store created before partitions were numbered: the items, and lead
            // tables (here cut down) keyed by the partition key.
            let store = SqliteStore::open(&dir).unwrap();
            drop(store);
            let conn = Connection::open(dir.join(DB_FILE)).unwrap();
            conn.execute_batch(
                "DROP TABLE lead_rows; DROP TABLE lead_attrs; DROP TABLE lead_parts;
                 CREATE TABLE lead_rows(pk TEXT NOT NULL, sk TEXT NOT NULL, c_name,
                     PRIMARY KEY(pk, sk)) WITHOUT ROWID;
                 CREATE INDEX lr_c_name ON lead_rows(pk, c_name, sk);
                 CREATE TABLE lead_attrs(pk TEXT NOT NULL, sk TEXT NOT NULL, name TEXT NOT NULL,
                     PRIMARY KEY(pk, sk, name)) WITHOUT ROWID;
                 PRAGMA user_version = 2;",
            )
            .unwrap();
            let size = r#"{"id":"a1","name":"size","type":"number","value":3}"#;
            for (sk, body) in [
                ("L#cl_2", lead("cl_2", "Beta", "")),
                ("L#cl_1", lead("cl_1", "Acme", size)),
            ] {
                conn.execute(
                    "INSERT INTO items(tbl, pk, sk, body, version) VALUES (?1, 'A#1', ?2, ?3, 1)",
                    params![tbl, sk, body.into_bytes()],
                )
                .unwrap();
            }
        }
        let store = SqliteStore::open(&dir).unwrap();
        let names = |store: &SqliteStore| {
            let store = store.clone();
            async move {
                listed(&store, SortField::Name, SortOrder::Asc)
                    .await
                    .into_iter()
                    .map(|l| l.name)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(names(&store).await, ["Acme", "Beta"]);
        assert_eq!(store.attribute_names("A#1").await.unwrap(), ["size"]);
        assert_eq!(
            store
                .leads_by_name_city("A#1", "beta", "paris", 5)
                .await
                .unwrap(),
            ["cl_2"]
        );
        // Another partition has no rows, and a new lead is listed with the rebuilt ones.
        assert!(store.attribute_names("A#2").await.unwrap().is_empty());
        store
            .transact(vec![WriteOp::Put {
                table: Table::Leads,
                item: Item::new(
                    Key::new("A#1", "L#cl_3"),
                    lead("cl_3", "Aardvark", "").into_bytes(),
                ),
                cond: Cond::NotExists,
            }])
            .await
            .unwrap();
        assert_eq!(names(&store).await, ["Aardvark", "Acme", "Beta"]);
        drop(store);
        // Opened again, nothing is rebuilt and nothing is lost.
        let store = SqliteStore::open(&dir).unwrap();
        assert_eq!(names(&store).await, ["Aardvark", "Acme", "Beta"]);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Layout 3 had three indexes for the `created_at` order that layout 4 serves from the
    /// lead key, and layouts 3 and 4 indexed the columns a lead may leave empty whole, where
    /// layout 5 leaves the leads without a value out. Opening such a database drops the
    /// `created_at` indexes, makes those indexes partial, and keeps every row: a rating sort
    /// lists the rated lead, then the other.
    #[tokio::test]
    async fn opening_layouts_3_and_4_makes_the_sparse_indexes_partial_and_keeps_the_rows() {
        for old in [3, 4] {
            let dir =
                std::env::temp_dir().join(format!("klozeo-layout{old}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let lead = |id: &str, rating: &str| {
                format!(
                    r#"{{"id":"{id}","name":"Acme","source":"test","city":"Paris","tags":[],
                    {rating}"created_at":1,"updated_at":1,"last_interaction_at":1}}"#
                )
            };
            let partial = |conn: &Connection| -> Vec<String> {
                conn.prepare(
                    "SELECT sql FROM sqlite_schema WHERE type = 'index' AND sql LIKE '% WHERE %'",
                )
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
            };
            let partial_now;
            {
                let store = SqliteStore::open(&dir).unwrap();
                let puts = [
                    ("L#cl_1", lead("cl_1", "")),
                    ("L#cl_2", lead("cl_2", r#""rating":4,"#)),
                ];
                for (sk, body) in puts {
                    store
                        .transact(vec![WriteOp::Put {
                            table: Table::Leads,
                            item: Item::new(Key::new("A#1", sk), body.into_bytes()),
                            cond: Cond::NotExists,
                        }])
                        .await
                        .unwrap();
                }
                drop(store);
                // The same indexes, whole, as the older layout had them.
                let conn = Connection::open(dir.join(DB_FILE)).unwrap();
                partial_now = partial(&conn);
                for sql in &partial_now {
                    let name = sql.split_whitespace().nth(2).unwrap();
                    let whole = &sql[..sql.find(" WHERE ").unwrap()];
                    conn.execute_batch(&format!("DROP INDEX {name}; {whole};"))
                        .unwrap();
                }
                assert!(partial(&conn).is_empty());
                if old == 3 {
                    conn.execute_batch(
                        "CREATE INDEX lr_c_created_at ON lead_rows(pid, c_created_at, sk);
                         CREATE INDEX lr_c_status_c_created_at
                             ON lead_rows(pid, c_status, c_created_at, sk);
                         CREATE INDEX lr_c_source_c_created_at
                             ON lead_rows(pid, c_source, c_created_at, sk);",
                    )
                    .unwrap();
                }
                conn.execute_batch(&format!("PRAGMA user_version = {old};"))
                    .unwrap();
            }
            let store = SqliteStore::open(&dir).unwrap();
            let ids: Vec<String> = listed(&store, SortField::Rating, SortOrder::Desc)
                .await
                .into_iter()
                .map(|l| l.id)
                .collect();
            assert_eq!(ids, ["cl_2", "cl_1"], "from layout {old}");
            drop(store);
            let conn = Connection::open(dir.join(DB_FILE)).unwrap();
            // Every sparse column and both composites.
            assert_eq!(partial(&conn).len(), 11, "from layout {old}");
            assert_eq!(partial(&conn), partial_now, "from layout {old}");
            let created_indexes: i64 = conn
                .query_row(
                    "SELECT count(*) FROM sqlite_schema
                     WHERE type = 'index' AND name LIKE '%created_at%'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(created_indexes, 0, "from layout {old}");
            let version: i64 = conn
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap();
            assert_eq!(version, 5);
            let rows: i64 = conn
                .query_row("SELECT count(*) FROM lead_rows", [], |r| r.get(0))
                .unwrap();
            assert_eq!(rows, 2, "from layout {old}");
            drop(conn);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

#[cfg(test)]
mod lead_plan_tests {
    use super::*;
    use crate::domain::filter::FilterSet;
    use crate::domain::lead::TextField;
    use crate::domain::query::{Sort, SortField, SortOrder, SortValue};
    use crate::ports::LeadScan;
    use sqlite_leads::Segment;

    /// SQLite's plan for one segment of a lead scan.
    fn plan(
        filters: &[&str],
        sort: Sort,
        seg: Segment,
        after: Option<(&SortValue, &str)>,
    ) -> String {
        let store = SqliteStore::in_memory().unwrap();
        let conn = store.conn.lock().unwrap();
        let filters = FilterSet::parse(filters).unwrap();
        let scan = LeadScan {
            partition: "A#acct",
            filters: &filters,
            sort: &sort,
            after,
            limit: 51,
        };
        let col = match &sort.field {
            SortField::Attr(_) => None,
            SortField::Rating => Some("c_rating"),
            SortField::Name => Some("c_name"),
            SortField::CreatedAt => Some("c_created_at"),
            SortField::Text(TextField::Phone) => Some("c_phone"),
            other => panic!("no column in this test for {other:?}"),
        };
        let (sql, args) = sqlite_leads::segment_sql(&scan, 1, seg, col, after, 51);
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let lines: Vec<String> = stmt
            .query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        lines.join(" | ")
    }

    fn sort(field: SortField, order: SortOrder) -> Sort {
        Sort { field, order }
    }

    /// The list shapes of the load benchmark read an index in list order: no table scan, no
    /// sort of the whole account, also when resuming from a cursor.
    #[test]
    fn common_list_shapes_walk_an_index_in_order() {
        let rating = SortValue::Num(4.5);
        let name = SortValue::Text("acme".into());
        let created = SortValue::Num(1.7e9);
        let cases = [
            (
                plan(
                    &[
                        "and.eq.city.Paris",
                        "and.gte.rating.4",
                        "and.array_contains.tags.vip",
                    ],
                    sort(SortField::Rating, SortOrder::Desc),
                    Segment::Present,
                    Some((&rating, "cl_1")),
                ),
                "INDEX lr_c_city_c_rating (",
            ),
            (
                plan(
                    &["and.eq.category.Food"],
                    sort(SortField::Rating, SortOrder::Asc),
                    Segment::Present,
                    None,
                ),
                "INDEX lr_c_category_c_rating (",
            ),
            (
                plan(
                    &[],
                    sort(SortField::Name, SortOrder::Asc),
                    Segment::Present,
                    Some((&name, "cl_1")),
                ),
                "INDEX lr_c_name (",
            ),
            (
                plan(
                    &["and.contains.name.orbit"],
                    sort(SortField::CreatedAt, SortOrder::Asc),
                    Segment::Present,
                    None,
                ),
                "SEARCH r USING PRIMARY KEY (pid=?)",
            ),
            (
                plan(
                    &["and.contains.name.orbit"],
                    sort(SortField::CreatedAt, SortOrder::Desc),
                    Segment::Present,
                    Some((&created, "cl_1")),
                ),
                "SEARCH r USING PRIMARY KEY (pid=? AND sk<?)",
            ),
            (
                plan(
                    &["and.eq.city.Paris", "and.gte.rating.4"],
                    sort(SortField::CreatedAt, SortOrder::Desc),
                    Segment::Present,
                    Some((&created, "cl_1")),
                ),
                "INDEX lr_c_city (pid=? AND c_city=? AND sk<?)",
            ),
            // The partial rating index holds no missing rating: those are in key order.
            (
                plan(
                    &[],
                    sort(SortField::Rating, SortOrder::Desc),
                    Segment::Missing,
                    None,
                ),
                "SEARCH r USING PRIMARY KEY (pid=?)",
            ),
            (
                plan(
                    &["and.eq.city.Paris"],
                    sort(SortField::Rating, SortOrder::Desc),
                    Segment::Missing,
                    Some((&SortValue::Missing, "cl_1")),
                ),
                "INDEX lr_c_city_c_rating (pid=? AND c_city=? AND c_rating=? AND sk<?)",
            ),
            (
                plan(
                    &["and.eq.category.Food", "and.contains.name.orbit"],
                    sort(SortField::Text(TextField::Phone), SortOrder::Asc),
                    Segment::Missing,
                    None,
                ),
                "INDEX lr_c_category (pid=? AND c_category=?)",
            ),
            // A column every lead has keeps its whole index: the missing ones are a seek.
            (
                plan(
                    &[],
                    sort(SortField::Name, SortOrder::Desc),
                    Segment::Missing,
                    None,
                ),
                "INDEX lr_c_name (pid=? AND c_name=?)",
            ),
            (
                plan(
                    &[],
                    sort(SortField::Attr("size".into()), SortOrder::Desc),
                    Segment::AttrNum,
                    Some((&rating, "cl_1")),
                ),
                "INDEX la_num (",
            ),
        ];
        for (plan, access) in cases {
            assert!(plan.contains(access), "{plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{plan}");
            assert!(
                !plan.contains("SCAN r") && !plan.contains("SCAN a"),
                "{plan}"
            );
        }
    }

    /// An in-memory database with the item tables only (no lead tables: items written here
    /// are not leads).
    fn item_tables() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(ITEM_TABLES).unwrap();
        conn
    }

    /// A member whose write fails inside SQLite (not a condition: those are checked before
    /// any write) fails alone: the group runs again with savepoints, and the members before
    /// and after it commit.
    #[test]
    fn a_write_that_fails_in_sqlite_fails_only_its_own_member() {
        let mut conn = item_tables();
        conn.execute_batch(
            "CREATE TRIGGER boom BEFORE INSERT ON items WHEN NEW.sk = 'boom'
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;",
        )
        .unwrap();
        let member = |sks: &[&str]| {
            let ops = sks
                .iter()
                .map(|sk| WriteOp::Put {
                    table: Table::Accounts,
                    item: Item::new(Key::new("G", *sk), b"{}".to_vec()),
                    cond: Cond::NotExists,
                })
                .collect();
            let (done, _) = tokio::sync::oneshot::channel();
            Pending {
                groups: vec![ops],
                done,
            }
        };
        let group = [member(&["a"]), member(&["b", "boom"]), member(&["c"])];
        let write = WriteCtx {
            now: 0,
            lead_index_entries: false,
        };
        let outcomes = commit_group(&mut conn, &group, write).unwrap();
        assert!(matches!(outcomes[0][..], [Ok(())]), "{outcomes:?}");
        assert!(
            matches!(outcomes[1][..], [Err(StoreError::Other(_))]),
            "{outcomes:?}"
        );
        assert!(matches!(outcomes[2][..], [Ok(())]), "{outcomes:?}");
        let stored: Vec<String> = conn
            .prepare("SELECT sk FROM items ORDER BY sk")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        // "b" went with the failed member, though its own insert had succeeded.
        assert_eq!(stored, ["a", "c"]);
    }

    /// Counter `Add`s of one group are summed and written once, with the same outcomes as
    /// one write each: a limit stops exactly the member that would pass it, each `Add`
    /// bumps the version, and a later write conditioned on the version sees the sum.
    #[test]
    fn the_adds_of_a_group_are_summed_with_the_outcomes_of_one_write_each() {
        let mut conn = item_tables();
        let add = |sk: &str, delta: i64, max: Option<i64>| WriteOp::Add {
            table: Table::Accounts,
            key: Key::new("A", sk),
            delta,
            max,
        };
        let member = |ops: Vec<WriteOp>| {
            let (done, _) = tokio::sync::oneshot::channel();
            Pending {
                groups: vec![ops],
                done,
            }
        };
        let write = WriteCtx {
            now: 0,
            lead_index_entries: false,
        };
        let counter = |conn: &Connection, sk: &str| -> (i64, i64) {
            conn.query_row(
                "SELECT counter, version FROM items WHERE pk = 'A' AND sk = ?1",
                [sk],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
        };
        // A limit of 3 on "limit", another counter beside it in each member.
        let group: Vec<Pending> = (0..5)
            .map(|_| member(vec![add("limit", 1, Some(3)), add("total", 2, None)]))
            .collect();
        let outcomes = commit_group(&mut conn, &group, write).unwrap();
        let ok: Vec<bool> = outcomes.iter().map(|o| o[0].is_ok()).collect();
        assert_eq!(ok, [true, true, true, false, false], "{outcomes:?}");
        assert!(matches!(
            outcomes[3][0],
            Err(StoreError::ConditionFailed(0))
        ));
        // A failed member added nothing, to neither counter.
        assert_eq!(counter(&conn, "limit"), (3, 3));
        assert_eq!(counter(&conn, "total"), (6, 3));

        // The next group: a put conditioned on the counter's version after two more adds
        // sees them (version 5), and an add after the put starts from the put's row.
        let mut replaced = Item::new(Key::new("A", "total"), Vec::new());
        replaced.version = 9;
        replaced.counter = 100;
        let group = [
            member(vec![add("total", 1, None)]),
            member(vec![add("total", 1, None)]),
            member(vec![WriteOp::Put {
                table: Table::Accounts,
                item: replaced.clone(),
                cond: Cond::Version(4),
            }]),
            member(vec![WriteOp::Put {
                table: Table::Accounts,
                item: replaced,
                cond: Cond::Version(5),
            }]),
            member(vec![add("total", 1, Some(101))]),
            member(vec![add("total", 1, Some(101))]),
        ];
        let outcomes = commit_group(&mut conn, &group, write).unwrap();
        let ok: Vec<bool> = outcomes.iter().map(|o| o[0].is_ok()).collect();
        assert_eq!(ok, [true, true, false, true, true, false], "{outcomes:?}");
        assert_eq!(counter(&conn, "total"), (101, 10));
    }
}
