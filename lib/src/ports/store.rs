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
    /// Reads the live items of a key range in order, after `start_after`.
    ///
    /// Returns exactly `min(limit, live matching items remaining)` items: a store never returns
    /// a short page while more items match (DynamoDB's 1 MB page cut and skipped expired items
    /// are the adapter's business), so a caller that reads one page sees everything up to its
    /// limit. `last` is `Some` if and only if the page holds `limit` items; it is then the
    /// position of the last item returned, and there may be nothing after it. A `limit` of 0
    /// reads nothing and returns an empty page without a position.
    async fn query(&self, req: &QueryReq) -> Result<Page, Error>;
    /// Runs several [`Store::query`]s, answering their pages in the order of `reqs`.
    ///
    /// A bulk write reads ahead the dedup lookups of all its items. This default runs eight at
    /// a time; the embedded store runs them all in one go on one connection, sparing a thread
    /// hand-off per lookup.
    async fn query_many(&self, reqs: &[QueryReq]) -> Result<Vec<Page>, Error> {
        let mut pages = Vec::with_capacity(reqs.len());
        for chunk in reqs.chunks(8) {
            let reads: Vec<_> = chunk.iter().map(|req| self.query(req)).collect();
            pages.extend(futures_util::future::try_join_all(reads).await?);
        }
        Ok(pages)
    }
    /// Applies every write atomically, or none when a condition fails.
    ///
    /// Before anything is written the group must pass [`check_transaction`] (DynamoDB's limits,
    /// enforced identically by every store): an item over [`MAX_ITEM_BYTES`] or a group over
    /// [`MAX_TRANSACTION_BYTES`] is [`Error::TooLarge`]; more than [`MAX_TRANSACTION_OPS`]
    /// writes or two writes on one item are [`Error::Internal`]. An empty group commits
    /// trivially.
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError>;
    /// Applies several transactions in order, each atomic on its own (as [`Store::transact`]
    /// would), stopping at the first that fails: the answer holds one outcome per transaction
    /// tried, so it is shorter than `groups` when one failed, and every transaction after the
    /// failed one was not tried (nothing of it is written).
    ///
    /// A bulk write is many independent transactions. DynamoDB runs them one after another
    /// (this default); the embedded store commits them together, in one fsync, each in its own
    /// savepoint, which is what makes a batch of 500 leads one durable write instead of 500.
    async fn transact_many(&self, groups: Vec<Vec<WriteOp>>) -> Vec<Result<(), StoreError>> {
        let mut out = Vec::with_capacity(groups.len());
        for ops in groups {
            let r = self.transact(ops).await;
            let failed = r.is_err();
            out.push(r);
            if failed {
                break;
            }
        }
        out
    }
    /// Reads up to `limit` items of a whole table after `start_after`, in an order that is
    /// stable for resuming (every item once). For background sweeps of small tables (the
    /// outbox under `klozeo serve`), never on a request path.
    async fn scan(&self, table: Table, start_after: Option<Key>, limit: u32)
    -> Result<Page, Error>;
    /// The store's own lead index, when it has one (the embedded store); `None` makes the
    /// services plan list requests on key ranges, as they must on DynamoDB.
    fn lead_index(&self) -> Option<&dyn crate::ports::LeadIndex> {
        None
    }
    /// Whether the store writes the index keys ([`Item::index_keys`]) of lead items. The
    /// embedded store lists leads from its own lead table and drops them (unless a caller
    /// that lists through the key-range planner asked for them), so the services skip
    /// computing them: some twenty formatted keys per written lead. Read at every write.
    fn writes_lead_index_keys(&self) -> bool {
        true
    }
    /// Whether the store finds a tenant's leads by name and city itself
    /// ([`Store::leads_by_name_city`]), from the lead table it keeps anyway. When it does, the
    /// services write no name + city lookup items (`NC#`), which on the embedded store were a
    /// fifth of a bulk load's CPU: one more random insert per lead into the largest B-tree.
    /// A store answers the same for its whole life.
    fn finds_leads_by_name_city(&self) -> bool {
        false
    }
    /// Up to `limit` ids of the leads in `partition` whose name and city fold
    /// ([`crate::domain::dedup::fold`]) to `name_fold` and `city_fold`, smallest id first: the
    /// order the `NC#` items would list them in. Only called when
    /// [`Store::finds_leads_by_name_city`] says so.
    async fn leads_by_name_city(
        &self,
        _partition: &str,
        _name_fold: &str,
        _city_fold: &str,
        _limit: u32,
    ) -> Result<Vec<String>, Error> {
        Err(Error::internal(
            "this store keeps no lead table to find leads by name and city",
        ))
    }
}

/// The largest item a store accepts, in bytes as [`item_size`] counts them.
///
/// DynamoDB documents its limit as "400 KB" of attribute names and values; the service accepts
/// a little more (up to 400 KiB), and moto refuses above 405,000 bytes. 400,000 is under all
/// of them, so an item accepted here is accepted by DynamoDB and its emulators alike.
pub const MAX_ITEM_BYTES: usize = 400_000;

/// The most writes in one transaction (DynamoDB `TransactWriteItems`).
pub const MAX_TRANSACTION_OPS: usize = 100;

/// The most bytes one transaction may carry, counted by [`check_transaction`]. DynamoDB's limit
/// is "4 MB" of aggregate item size; like [`MAX_ITEM_BYTES`], the decimal reading is the safe one.
pub const MAX_TRANSACTION_BYTES: usize = 4_000_000;

/// The size of `item` as DynamoDB counts it, for the attributes the DynamoDB adapter stores.
///
/// The adapter stores an item as `pk` and `sk` (strings), `b` (the body, as a UTF-8 string:
/// invalid bytes become U+FFFD, three bytes each), `v` (version) and `c` (counter) as numbers,
/// `expires_at` (number) when set, and for each index entry `<index>_pk` and `<index>_sk`
/// (strings). DynamoDB's sizing rules relied on:
/// - an item's size is the sum of its attribute names' UTF-8 lengths and its values' sizes;
/// - a string's value size is its UTF-8 length;
/// - a number's value size is about one byte per two significant digits, plus one. This counts
///   every decimal digit (DynamoDB trims leading and trailing zeros), rounds up, and adds one
///   for a minus sign, so it never undercounts.
///
/// Index entries are all counted even if the table does not declare their index or one index
/// appears twice (the adapter would store fewer attributes): the count may be high, never low.
/// A unit test of the DynamoDB adapter checks this against the attributes it actually builds.
pub fn item_size(item: &Item) -> usize {
    let text = |name: &str, value: &str| name.len() + value.len();
    let number = |name: &str, value: i128| name.len() + number_size(value);
    let mut size = text("pk", &item.key.pk)
        + text("sk", &item.key.sk)
        + "b".len()
        + String::from_utf8_lossy(&item.body).len()
        + number("v", i128::from(item.version))
        + number("c", i128::from(item.counter));
    if let Some(t) = item.expires_at {
        size += number("expires_at", i128::from(t));
    }
    for ik in &item.index_keys {
        // `<index>_pk` and `<index>_sk`: the index name plus three bytes each.
        size += 2 * (ik.index.len() + 3) + ik.pk.len() + ik.sk.len();
    }
    size
}

/// DynamoDB's value size of a number, rounded up (see [`item_size`]).
fn number_size(value: i128) -> usize {
    let digits = value.unsigned_abs().checked_ilog10().unwrap_or(0) as usize + 1;
    digits.div_ceil(2) + 1 + usize::from(value < 0)
}

/// The size of a key's attributes (`pk` and `sk`), what a write without an item carries.
fn key_size(key: &Key) -> usize {
    "pk".len() + key.pk.len() + "sk".len() + key.sk.len()
}

/// What a group of writes counts towards [`MAX_TRANSACTION_BYTES`], as [`check_transaction`]
/// counts it (for packing many small writes into few transactions).
pub fn transaction_bytes(ops: &[WriteOp]) -> usize {
    ops.iter().map(WriteOp::transaction_size).sum()
}

impl WriteOp {
    /// The table and key this write addresses.
    pub fn target(&self) -> (Table, &Key) {
        match self {
            WriteOp::Put { table, item, .. } => (*table, &item.key),
            WriteOp::Delete { table, key, .. }
            | WriteOp::Add { table, key, .. }
            | WriteOp::Check { table, key, .. } => (*table, key),
        }
    }

    /// What this write counts towards [`MAX_TRANSACTION_BYTES`]: a put's whole item, otherwise
    /// its key, plus for an add the attributes its update sets (`c`, `v`, `b`), at their largest.
    fn transaction_size(&self) -> usize {
        match self {
            WriteOp::Put { item, .. } => item_size(item),
            WriteOp::Delete { key, .. } | WriteOp::Check { key, .. } => key_size(key),
            WriteOp::Add { key, .. } => key_size(key) + 2 * (1 + number_size(i128::MIN)) + 1,
        }
    }
}

/// Checks a transaction against DynamoDB's limits before anything is written. Every store calls
/// it first, so a group is refused, with the same error, whichever store runs it.
///
/// - an item over [`MAX_ITEM_BYTES`] ([`item_size`]) is [`Error::TooLarge`], a message the caller
///   can act on (the HTTP edge answers 413);
/// - a group carrying more than [`MAX_TRANSACTION_BYTES`] is [`Error::TooLarge`];
/// - more than [`MAX_TRANSACTION_OPS`] writes, or two writes on the same item (same table and
///   key, whatever the kinds of write), are [`Error::Internal`]: the services build groups, so
///   either is a bug to fix there, not something a caller can change.
pub fn check_transaction(ops: &[WriteOp]) -> Result<(), Error> {
    if ops.len() > MAX_TRANSACTION_OPS {
        return Err(Error::internal(format!(
            "a transaction of {} writes: a transaction may hold at most {MAX_TRANSACTION_OPS} \
             (DynamoDB's limit); split it",
            ops.len()
        )));
    }
    let mut seen = std::collections::HashMap::with_capacity(ops.len());
    let mut total = 0usize;
    for (i, op) in ops.iter().enumerate() {
        let (table, key) = op.target();
        if let Some(first) = seen.insert((table, key), i) {
            return Err(Error::internal(format!(
                "writes {first} and {i} of one transaction both address {table:?} item \
                 ({:?}, {:?}): DynamoDB refuses two operations on one item in a transaction",
                key.pk, key.sk
            )));
        }
        if let WriteOp::Put { item, .. } = op {
            let size = item_size(item);
            if size > MAX_ITEM_BYTES {
                return Err(Error::TooLarge(format!(
                    "the document is {} bytes as stored; a stored item may be at most {} bytes \
                     (DynamoDB's 400 KB limit): store fewer or smaller attributes",
                    thousands(size),
                    thousands(MAX_ITEM_BYTES)
                )));
            }
        }
        total += op.transaction_size();
    }
    if total > MAX_TRANSACTION_BYTES {
        return Err(Error::TooLarge(format!(
            "one change writes {} bytes; a change may write at most {} bytes (DynamoDB's 4 MB \
             transaction limit): write fewer or smaller items at once",
            thousands(total),
            thousands(MAX_TRANSACTION_BYTES)
        )));
    }
    Ok(())
}

/// `1234567` as `1,234,567`, for sizes in messages people read.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: Key, body_len: usize) -> WriteOp {
        WriteOp::Put {
            table: Table::Leads,
            item: Item::new(key, vec![b'x'; body_len]),
            cond: Cond::Always,
        }
    }

    #[test]
    fn item_size_counts_names_and_values() {
        let mut item = Item::new(Key::new("A#1", "L#x"), b"{}".to_vec());
        // pk+A#1, sk+L#x, b+{}, v+1 (1 digit: 1 + 1), c+0 (1 + 1)
        assert_eq!(item_size(&item), 5 + 5 + 3 + 3 + 3);
        item.expires_at = Some(1_700_000_000); // 10 digits: 5 + 1
        item.version = 12_345; // 5 digits: 3 + 1
        item.counter = -7; // 1 digit: 1 + 1, plus the sign
        item.index_keys.push(IndexKey {
            index: "by_city",
            pk: "A#1#paris".into(),
            sk: "cl_1".into(),
        });
        let index = "by_city_pk".len() + 9 + "by_city_sk".len() + 4;
        assert_eq!(
            item_size(&item),
            5 + 5 + 3 + (1 + 4) + (1 + 3) + (10 + 6) + index
        );
        // Invalid UTF-8 is stored as U+FFFD (3 bytes).
        item.body = vec![0xff];
        assert_eq!(
            item_size(&item),
            5 + 5 + 4 + (1 + 4) + (1 + 3) + (10 + 6) + index
        );
    }

    #[test]
    fn number_sizes_round_up() {
        assert_eq!(number_size(0), 2);
        assert_eq!(number_size(9), 2);
        assert_eq!(number_size(10), 2);
        assert_eq!(number_size(100), 3);
        assert_eq!(number_size(-100), 4);
        assert_eq!(number_size(i128::from(u64::MAX)), 11);
        assert_eq!(number_size(i128::MIN), 22);
    }

    #[test]
    fn thousands_separates_groups() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(512_340), "512,340");
        assert_eq!(thousands(4_000_000), "4,000,000");
    }

    #[test]
    fn transactions_are_checked_against_dynamodb_limits() {
        let ok: Vec<WriteOp> = (0..MAX_TRANSACTION_OPS)
            .map(|i| put(Key::new("p", i.to_string()), 10))
            .collect();
        assert_eq!(check_transaction(&ok), Ok(()));
        assert_eq!(check_transaction(&[]), Ok(()));

        let mut too_many = ok.clone();
        too_many.push(put(Key::new("p", "last"), 10));
        assert!(matches!(
            check_transaction(&too_many),
            Err(Error::Internal(_))
        ));

        let dup = [
            put(Key::new("p", "a"), 1),
            WriteOp::Check {
                table: Table::Leads,
                key: Key::new("p", "a"),
                cond: Cond::Exists,
            },
        ];
        let Err(Error::Internal(msg)) = check_transaction(&dup) else {
            panic!("duplicate accepted");
        };
        assert!(msg.contains("writes 0 and 1"), "{msg}");
        // The same key in another table is another item.
        let other_table = [
            put(Key::new("p", "a"), 1),
            WriteOp::Check {
                table: Table::Accounts,
                key: Key::new("p", "a"),
                cond: Cond::Exists,
            },
        ];
        assert_eq!(check_transaction(&other_table), Ok(()));

        let empty = item_size(&Item::new(Key::new("p", "big"), Vec::new()));
        let fits = put(Key::new("p", "big"), MAX_ITEM_BYTES - empty);
        assert_eq!(check_transaction(std::slice::from_ref(&fits)), Ok(()));
        let over = put(Key::new("p", "big"), MAX_ITEM_BYTES - empty + 1);
        let Err(Error::TooLarge(msg)) = check_transaction(&[put(Key::new("p", "a"), 1), over])
        else {
            panic!("oversized item accepted");
        };
        assert!(msg.contains("400,001 bytes"), "{msg}");

        let group: Vec<WriteOp> = (0..11)
            .map(|i| put(Key::new("p", i.to_string()), 380_000))
            .collect();
        assert!(matches!(check_transaction(&group), Err(Error::TooLarge(_))));
        assert_eq!(check_transaction(&group[..10]), Ok(()));
    }
}
