//! The embedded store: SQLite in WAL mode with `synchronous=FULL`, so an acknowledged write
//! survives `kill -9` and power loss, and several processes (a running `klozeo serve` and a
//! `klozeo account create`) can share one data directory.
//!
//! Tables and indexes of the store port map onto two SQLite tables: `items` (one row per item)
//! and `idx` (one row per secondary-index entry), kept in step inside the same transaction.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::error::Error;
use crate::ports::{
    Clock, Cond, Item, Key, Page, Position, QueryReq, SkCond, Store, StoreError, SystemClock,
    Table, WriteOp,
};

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "klozeo.db";

/// The embedded store.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    clock: Arc<dyn Clock>,
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
        let conn = Connection::open(data_dir.join(DB_FILE)).map_err(db_err)?;
        Self::init(conn)
    }

    /// Uses `clock` to decide which items have expired (tests move time by hand).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// An in-memory store for tests.
    pub fn in_memory() -> Result<Self, Error> {
        Self::init(Connection::open_in_memory().map_err(db_err)?)
    }

    fn init(conn: Connection) -> Result<Self, Error> {
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(db_err)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=FULL;
             PRAGMA foreign_keys=OFF;
             CREATE TABLE IF NOT EXISTS items(
                 tbl TEXT NOT NULL, pk TEXT NOT NULL, sk TEXT NOT NULL,
                 body BLOB NOT NULL, version INTEGER NOT NULL,
                 counter INTEGER NOT NULL DEFAULT 0, expires_at INTEGER,
                 PRIMARY KEY(tbl, pk, sk)) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS idx(
                 tbl TEXT NOT NULL, idx TEXT NOT NULL, ipk TEXT NOT NULL, isk TEXT NOT NULL,
                 pk TEXT NOT NULL, sk TEXT NOT NULL,
                 PRIMARY KEY(tbl, idx, ipk, isk, pk, sk)) WITHOUT ROWID;
             CREATE INDEX IF NOT EXISTS idx_by_item ON idx(tbl, pk, sk);",
        )
        .map_err(db_err)?;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            clock: Arc::new(SystemClock),
        })
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

fn current(
    tx: &Connection,
    tbl: &str,
    key: &Key,
    now: i64,
) -> rusqlite::Result<Option<(u64, i64)>> {
    let row: Option<(i64, i64, Option<i64>)> = tx
        .query_row(
            "SELECT version, counter, expires_at FROM items WHERE tbl=?1 AND pk=?2 AND sk=?3",
            params![tbl, key.pk, key.sk],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    Ok(row
        .filter(|(_, _, exp)| live(*exp, now))
        .map(|(v, c, _)| (v as u64, c)))
}

fn cond_holds(cond: Cond, cur: Option<(u64, i64)>) -> bool {
    match cond {
        Cond::Always => true,
        Cond::NotExists => cur.is_none(),
        Cond::Exists => cur.is_some(),
        Cond::Version(v) => cur.is_some_and(|(cv, _)| cv == v),
    }
}

fn delete_row(tx: &Connection, tbl: &str, key: &Key) -> rusqlite::Result<()> {
    tx.execute(
        "DELETE FROM items WHERE tbl=?1 AND pk=?2 AND sk=?3",
        params![tbl, key.pk, key.sk],
    )?;
    tx.execute(
        "DELETE FROM idx WHERE tbl=?1 AND pk=?2 AND sk=?3",
        params![tbl, key.pk, key.sk],
    )?;
    Ok(())
}

fn apply_op(tx: &Connection, op: &WriteOp, now: i64) -> Result<bool, rusqlite::Error> {
    match op {
        WriteOp::Put { table, item, cond } => {
            let tbl = table_name(*table);
            if !cond_holds(*cond, current(tx, tbl, &item.key, now)?) {
                return Ok(false);
            }
            delete_row(tx, tbl, &item.key)?;
            tx.execute(
                "INSERT INTO items(tbl, pk, sk, body, version, counter, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    tbl,
                    item.key.pk,
                    item.key.sk,
                    item.body,
                    item.version as i64,
                    item.counter,
                    item.expires_at
                ],
            )?;
            for ik in &item.index_keys {
                tx.execute(
                    "INSERT INTO idx(tbl, idx, ipk, isk, pk, sk) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![tbl, ik.index, ik.pk, ik.sk, item.key.pk, item.key.sk],
                )?;
            }
            Ok(true)
        }
        WriteOp::Delete { table, key, cond } => {
            let tbl = table_name(*table);
            if !cond_holds(*cond, current(tx, tbl, key, now)?) {
                return Ok(false);
            }
            delete_row(tx, tbl, key)?;
            Ok(true)
        }
        WriteOp::Add {
            table,
            key,
            delta,
            max,
        } => {
            let tbl = table_name(*table);
            let cur = current(tx, tbl, key, now)?;
            let next = cur.map_or(0, |(_, c)| c) + delta;
            if max.is_some_and(|m| next > m) {
                return Ok(false);
            }
            match cur {
                Some(_) => tx.execute(
                    "UPDATE items SET counter=?4, version=version+1 WHERE tbl=?1 AND pk=?2 AND sk=?3",
                    params![tbl, key.pk, key.sk, next],
                )?,
                None => {
                    delete_row(tx, tbl, key)?;
                    tx.execute(
                        "INSERT INTO items(tbl, pk, sk, body, version, counter, expires_at)
                         VALUES (?1, ?2, ?3, x'', 1, ?4, NULL)",
                        params![tbl, key.pk, key.sk, next],
                    )?
                }
            };
            Ok(true)
        }
        WriteOp::Check { table, key, cond } => Ok(cond_holds(
            *cond,
            current(tx, table_name(*table), key, now)?,
        )),
    }
}

fn sk_clause(col: &str, sk: &SkCond, args: &mut Vec<SqlValue>) -> String {
    let mut push = |v: &String| {
        args.push(SqlValue::Text(v.clone()));
        format!("?{}", args.len())
    };
    match sk {
        SkCond::Any => String::new(),
        SkCond::BeginsWith(p) => {
            let a = push(p);
            format!(" AND substr({col}, 1, length({a})) = {a}")
        }
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

fn run_query(conn: &Connection, req: &QueryReq, now: i64) -> Result<Page, Error> {
    let tbl = table_name(req.table);
    let dir = if req.descending { "DESC" } else { "ASC" };
    let cmp = if req.descending { "<" } else { ">" };
    let mut args: Vec<SqlValue> = vec![SqlValue::Text(tbl.into()), SqlValue::Text(req.pk.clone())];
    let sql = match req.index {
        None => {
            let mut sql = format!(
                "SELECT {ITEM_COLS}, NULL FROM items i WHERE i.tbl=?1 AND i.pk=?2{}",
                sk_clause("i.sk", &req.sk, &mut args)
            );
            if let Some(pos) = &req.start_after {
                args.push(SqlValue::Text(pos.key.sk.clone()));
                sql.push_str(&format!(" AND i.sk {cmp} ?{}", args.len()));
            }
            sql.push_str(&format!(" ORDER BY i.sk {dir}"));
            sql
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
            sql.push_str(&format!(" ORDER BY x.isk {dir}, x.pk {dir}, x.sk {dir}"));
            sql
        }
    };
    args.push(SqlValue::Integer(i64::from(req.limit)));
    let sql = format!("{sql} LIMIT ?{}", args.len());
    let mut stmt = conn.prepare_cached(&sql).map_err(db_err)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(args), |r| {
            Ok((row_to_item(r)?, r.get::<_, Option<String>>(6)?))
        })
        .map_err(db_err)?;
    let mut items = Vec::new();
    let mut last = None;
    let mut read = 0u32;
    for row in rows {
        let (item, isk) = row.map_err(db_err)?;
        read += 1;
        last = Some(Position {
            key: item.key.clone(),
            index: isk.map(|s| (req.pk.clone(), s)),
        });
        if live(item.expires_at, now) {
            items.push(item);
        }
    }
    Ok(Page {
        items,
        last: if read >= req.limit { last } else { None },
    })
}

#[async_trait]
impl Store for SqliteStore {
    async fn get(&self, table: Table, key: &Key) -> Result<Option<Item>, Error> {
        let key = key.clone();
        let res = self
            .with_conn(move |c, now| {
                let item = c
                    .query_row(
                        &format!(
                            "SELECT {ITEM_COLS} FROM items i WHERE i.tbl=?1 AND i.pk=?2 AND i.sk=?3"
                        ),
                        params![table_name(table), key.pk, key.sk],
                        row_to_item,
                    )
                    .optional()
                    .map_err(db_err)?;
                Ok(item.filter(|i| live(i.expires_at, now)))
            })
            .await?;
        Ok(res)
    }

    async fn batch_get(&self, table: Table, keys: &[Key]) -> Result<Vec<Item>, Error> {
        let keys = keys.to_vec();
        let res = self
            .with_conn(move |c, now| {
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
        let req = req.clone();
        Ok(self
            .with_conn(move |c, now| Ok(run_query(c, &req, now)?))
            .await?)
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
        self.with_conn(move |c, now| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err)?;
            for (i, op) in ops.iter().enumerate() {
                if !apply_op(&tx, op, now).map_err(db_err)? {
                    // Dropping the transaction rolls back every earlier write of this group.
                    return Err(StoreError::ConditionFailed(i));
                }
            }
            tx.commit().map_err(db_err)?;
            Ok(())
        })
        .await
    }
}
