//! The store port: a small item store that both an embedded database and DynamoDB honour
//! atomically.
//!
//! Items live in a few named tables, addressed by a partition key and a sort key (strings that
//! compare byte-wise). Each item may also appear in named secondary indexes under its own index
//! keys. Writes are grouped into one atomic transaction whose conditions either all hold or
//! nothing is written (DynamoDB `TransactWriteItems`). What the keys mean is decided above this
//! port, in `crate::schema`.

use async_trait::async_trait;

use crate::error::Error;

/// The logical tables. Physical names are the adapter's business (a prefix per deployment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    /// Leads, notes, uniqueness markers.
    Leads,
    /// Accounts, API keys, counters.
    Accounts,
    /// Recorded events waiting for delivery.
    Outbox,
}

/// The primary key of an item.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// Partition key.
    pub pk: String,
    /// Sort key.
    pub sk: String,
}

impl Key {
    /// Builds a key.
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Key {
            pk: pk.into(),
            sk: sk.into(),
        }
    }
}

/// An item's entry in a secondary index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexKey {
    /// Index name, one of the table's declared indexes.
    pub index: &'static str,
    /// Index partition key.
    pub pk: String,
    /// Index sort key; the schema makes it unique within the partition.
    pub sk: String,
}

/// A stored item.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Primary key.
    pub key: Key,
    /// The serialized document (JSON); opaque to the store.
    pub body: Vec<u8>,
    /// Optimistic-concurrency version, incremented by the writer.
    pub version: u64,
    /// Entries in secondary indexes (sparse: an item is in an index only if listed here).
    pub index_keys: Vec<IndexKey>,
    /// Unix seconds after which the item is treated as gone.
    pub expires_at: Option<i64>,
    /// A numeric counter, changed atomically by [`WriteOp::Add`].
    pub counter: i64,
}

impl Item {
    /// An item with a body and no index entries.
    pub fn new(key: Key, body: Vec<u8>) -> Self {
        Item {
            key,
            body,
            version: 1,
            index_keys: Vec::new(),
            expires_at: None,
            counter: 0,
        }
    }
}

/// A condition on the current state of an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cond {
    /// No condition.
    Always,
    /// The item must not exist.
    NotExists,
    /// The item must exist.
    Exists,
    /// The item must exist with exactly this version.
    Version(u64),
}

/// One write of an atomic transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    /// Create or replace an item.
    Put {
        /// Target table.
        table: Table,
        /// The full new item.
        item: Item,
        /// Condition on the current item.
        cond: Cond,
    },
    /// Delete an item.
    Delete {
        /// Target table.
        table: Table,
        /// Key to delete.
        key: Key,
        /// Condition on the current item.
        cond: Cond,
    },
    /// Add `delta` to the item's counter, creating the item at 0 if missing. With `max`, the
    /// write fails unless the counter stays at or below `max` afterwards.
    Add {
        /// Target table.
        table: Table,
        /// Counter item key.
        key: Key,
        /// Amount to add (may be negative).
        delta: i64,
        /// Upper bound for the new value.
        max: Option<i64>,
    },
    /// Assert a condition without writing.
    Check {
        /// Target table.
        table: Table,
        /// Key to check.
        key: Key,
        /// The condition.
        cond: Cond,
    },
}

/// A condition on the sort key of a query (one, as DynamoDB allows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkCond {
    /// Every sort key.
    Any,
    /// Sort keys starting with the prefix.
    BeginsWith(String),
    /// Sort keys in the inclusive range.
    Between(String, String),
    /// Sort keys greater than the value.
    Gt(String),
    /// Sort keys greater than or equal to the value.
    Ge(String),
    /// Sort keys less than the value.
    Lt(String),
    /// Sort keys less than or equal to the value.
    Le(String),
}

/// Where a query resumes: the full key of the last item seen (plus its index key when the
/// query ran on an index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// Base-table key of the last item.
    pub key: Key,
    /// Index partition and sort key of the last item, for index queries.
    pub index: Option<(String, String)>,
}

/// A key-range query on a table or one of its indexes.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryReq {
    /// Table.
    pub table: Table,
    /// Index name, or `None` for the base table.
    pub index: Option<&'static str>,
    /// Partition key value (of the index when `index` is set).
    pub pk: String,
    /// Sort-key condition.
    pub sk: SkCond,
    /// Exclusive start position.
    pub start_after: Option<Position>,
    /// Descending sort-key order.
    pub descending: bool,
    /// Most items to read.
    pub limit: u32,
}

/// One page of query results.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// Items in sort-key order.
    pub items: Vec<Item>,
    /// Where to resume, when the store stopped at `limit` (there may be nothing after it).
    pub last: Option<Position>,
}

/// Why a transaction did not commit.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    /// The condition of the write at this index did not hold; nothing was written.
    #[error("condition of write {0} failed")]
    ConditionFailed(usize),
    /// Anything else.
    #[error(transparent)]
    Other(#[from] Error),
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::ConditionFailed(i) => Error::Conflict {
                code: crate::error::Code::Conflict,
                message: format!("a concurrent change was detected (write {i}); please retry"),
            },
            StoreError::Other(e) => e,
        }
    }
}

/// The storage port.
#[async_trait]
pub trait Store: Send + Sync {
    /// Reads one item (expired items read as absent).
    async fn get(&self, table: Table, key: &Key) -> Result<Option<Item>, Error>;
    /// Reads several items of one table; missing ones are left out, order is not kept.
    async fn batch_get(&self, table: Table, keys: &[Key]) -> Result<Vec<Item>, Error>;
    /// Reads up to `limit` items of a key range in order.
    async fn query(&self, req: &QueryReq) -> Result<Page, Error>;
    /// Applies every write atomically, or none when a condition fails.
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError>;
    /// Reads up to `limit` items of a whole table after `start_after`, in an order that is
    /// stable for resuming (every item once). For background sweeps of small tables (the
    /// outbox under `klozeo serve`), never on a request path.
    async fn scan(&self, table: Table, start_after: Option<Key>, limit: u32)
    -> Result<Page, Error>;
}
