//! Bulk writes in few transactions: a batch runs its items one by one, with the same code as
//! single writes, against a [`BatchView`] of the store that keeps the batch's writes in memory
//! and reads through to the store for everything else. When every item is decided, the view's
//! net writes are packed into as few transactions as the store allows and committed in one
//! [`Store::transact_many`] call (one fsync on the embedded store, 100-write transactions on
//! DynamoDB).
//!
//! Why a view and not a second implementation of deduplication: an item of the batch must see
//! what the items before it did (a later item merging into a lead an earlier one created, a
//! marker an earlier merge moved), exactly as if they had been committed one after another.
//! Running the one implementation against a view that holds those writes gives that by
//! construction.
//!
//! Atomicity stays per item: the items whose writes touch a common item (a lead created and
//! merged into, a marker handed from one lead to another) form one component, and a component
//! is never split between transactions. Counters are the exception, by design: every item adds
//! to the same analytics and lead counters, so each transaction carries one `Add` per counter
//! with the sum of its own items' deltas (DynamoDB allows one operation per item in a
//! transaction).
//!
//! Every net write carries a condition on what the view read before the batch (the version of
//! an item it read, the absence of a key it created), so a concurrent writer that changed one
//! of them makes that transaction fail; the caller then runs the items from there on again,
//! one by one, on the store itself.

use std::collections::{BTreeMap, BTreeSet};
// A batch hashes each of its keys a dozen times over (view, plan, packing): SipHash's
// protection against chosen keys costs a twentieth of a batch's CPU here, and a batch's keys
// come from one caller's request of at most 500 leads, where foldhash's seeded hashing
// suffices.
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::domain::dedup::name_city_of;
use crate::error::Error;
use crate::ports::{
    Cond, Item, Key, MAX_ITEM_BYTES, MAX_TRANSACTION_BYTES, MAX_TRANSACTION_OPS, Page, Position,
    QueryReq, SkCond, Store, StoreError, Table, WriteOp, check_transaction, transaction_bytes,
};
use crate::schema;

/// What the store held for a key before the batch, as far as the view knows.
#[derive(Debug, Clone)]
enum Base {
    /// Not read: the view wrote without needing it.
    Unknown,
    /// Read: absent.
    Absent,
    /// Read: this item.
    Present(Item),
}

/// What the batch left at a key.
#[derive(Debug, Clone)]
enum Now {
    /// Not written (only read, or only counted).
    Untouched,
    /// Written: this item.
    Item(Item),
    /// Deleted.
    Deleted,
}

#[derive(Debug, Clone)]
struct Entry {
    base: Base,
    now: Now,
    /// The first write found no item without reading one (`NotExists` on an unread key): the
    /// commit keeps that condition.
    must_be_absent: bool,
    /// Sum of the batch's `Add`s on this key.
    delta: i64,
    /// The bound an `Add` carried, if any.
    max: Option<i64>,
}

impl Entry {
    fn unknown() -> Self {
        Entry {
            base: Base::Unknown,
            now: Now::Untouched,
            must_be_absent: false,
            delta: 0,
            max: None,
        }
    }

    /// The item as the batch sees it now, if the view knows.
    fn visible(&self) -> Option<Option<Item>> {
        let mut item = match &self.now {
            Now::Item(i) => Some(i.clone()),
            Now::Deleted => None,
            Now::Untouched => match &self.base {
                Base::Unknown => return None,
                Base::Absent => None,
                Base::Present(i) => Some(i.clone()),
            },
        };
        if self.delta != 0 {
            let key_item = item.get_or_insert_with(|| Item::new(Key::new("", ""), Vec::new()));
            key_item.counter += self.delta;
        }
        Some(item)
    }
}

/// One transaction the view accepted, with the batch item it belongs to.
#[derive(Debug)]
struct Accepted {
    item: usize,
    /// Keys written (not counted).
    keys: Vec<(Table, Key)>,
    /// Counter additions: key, delta, bound.
    adds: Vec<(Table, Key, i64, Option<i64>)>,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<(Table, Key), Entry>,
    accepted: Vec<Accepted>,
    /// The keys the batch wrote or deleted, in key order, for range queries.
    written: BTreeSet<(u8, String, String)>,
    current_item: usize,
    queries: HashMap<String, Page>,
    /// Keys the batch checked to be absent without writing them (an account's webhook marker):
    /// every transaction of the commit checks them again.
    guards: BTreeSet<(u8, Key)>,
    /// Where the batch's own writes left each lead it wrote: its folded name and city, `None`
    /// when deleted or without a city. Kept only over a store that finds leads by name and
    /// city itself, which cannot see the batch's leads.
    places: HashMap<Key, Option<(String, String)>>,
    /// The same, by place: the sort keys of the batch's leads at each (partition, name, city).
    at_place: HashMap<(String, String, String), BTreeSet<String>>,
}

impl State {
    /// Records where a write left the lead at `key` (`None`: deleted or without a city).
    fn place_lead(&mut self, key: &Key, place: Option<(String, String)>) {
        if let Some(Some((name, city))) = self.places.get(key) {
            let at = (key.pk.clone(), name.clone(), city.clone());
            if let Some(sks) = self.at_place.get_mut(&at) {
                sks.remove(&key.sk);
            }
        }
        if let Some((name, city)) = &place {
            self.at_place
                .entry((key.pk.clone(), name.clone(), city.clone()))
                .or_default()
                .insert(key.sk.clone());
        }
        self.places.insert(key.clone(), place);
    }
}

/// A store view that keeps a batch's writes in memory (see the module documentation).
pub(crate) struct BatchView {
    base: Arc<dyn Store>,
    state: Mutex<State>,
}

/// Transactions ready to commit, each with the batch items it carries, and the items that
/// cannot be committed from the view (a component too big for one transaction, and everything
/// after it): they run again on the store itself.
pub(crate) struct Plan {
    /// Transactions in order, with the items each carries.
    pub chunks: Vec<(Vec<WriteOp>, Vec<usize>)>,
    /// Items to run again, one by one.
    pub replay: Vec<usize>,
}

fn lock(m: &Mutex<State>) -> Result<std::sync::MutexGuard<'_, State>, Error> {
    m.lock()
        .map_err(|_| Error::internal("batch view lock poisoned"))
}

fn sk_matches(sk: &str, cond: &SkCond) -> bool {
    match cond {
        SkCond::Any => true,
        SkCond::BeginsWith(p) => sk.starts_with(p.as_str()),
        SkCond::Between(a, b) => sk >= a.as_str() && sk <= b.as_str(),
        SkCond::Gt(v) => sk > v.as_str(),
        SkCond::Ge(v) => sk >= v.as_str(),
        SkCond::Lt(v) => sk < v.as_str(),
        SkCond::Le(v) => sk <= v.as_str(),
    }
}

impl BatchView {
    /// A view over `base` with nothing written yet.
    pub(crate) fn new(base: Arc<dyn Store>) -> Self {
        BatchView {
            base,
            state: Mutex::new(State::default()),
        }
    }

    /// Attributes the transactions that follow to batch item `i`.
    pub(crate) fn set_item(&self, i: usize) -> Result<(), Error> {
        lock(&self.state)?.current_item = i;
        Ok(())
    }

    /// Reads into the view the keys it does not know yet (one read per table).
    async fn learn(&self, table: Table, keys: &[Key]) -> Result<(), Error> {
        let unknown: Vec<Key> = {
            let st = lock(&self.state)?;
            keys.iter()
                .filter(|k| {
                    st.entries.get(&(table, (*k).clone())).is_none_or(|e| {
                        matches!(e.base, Base::Unknown) && matches!(e.now, Now::Untouched)
                    })
                })
                .cloned()
                .collect()
        };
        if unknown.is_empty() {
            return Ok(());
        }
        let found = self.base.batch_get(table, &unknown).await?;
        let mut st = lock(&self.state)?;
        let mut found: HashMap<Key, Item> = found.into_iter().map(|i| (i.key.clone(), i)).collect();
        for k in unknown {
            let e = st
                .entries
                .entry((table, k.clone()))
                .or_insert_with(Entry::unknown);
            if matches!(e.base, Base::Unknown) {
                e.base = match found.remove(&k) {
                    Some(i) => Base::Present(i),
                    None => Base::Absent,
                };
            }
        }
        Ok(())
    }

    /// Reads the keys of every batch item's first lookups ahead, in one read per table.
    pub(crate) async fn prefetch(&self, table: Table, keys: &[Key]) -> Result<(), Error> {
        self.learn(table, keys).await
    }

    /// Runs ahead the queries the items will make, several at a time.
    pub(crate) async fn prefetch_queries(&self, reqs: Vec<QueryReq>) -> Result<(), Error> {
        let pages = self.base.query_many(&reqs).await?;
        let mut st = lock(&self.state)?;
        for (req, page) in reqs.iter().zip(pages) {
            st.queries.insert(format!("{req:?}"), page);
        }
        Ok(())
    }

    /// The net writes of the batch, packed into transactions (see [`Plan`]). Takes what the
    /// view holds, leaving it empty: the writes move into the plan instead of being copied.
    pub(crate) fn plan(&self) -> Result<Plan, Error> {
        let State {
            mut entries,
            accepted,
            guards,
            ..
        } = std::mem::take(&mut *lock(&self.state)?);
        // Components: items joined by a common written key (union-find over item numbers).
        let mut parent: HashMap<usize, usize> = HashMap::new();
        fn find(parent: &mut HashMap<usize, usize>, x: usize) -> usize {
            let p = *parent.entry(x).or_insert(x);
            if p == x {
                return x;
            }
            let r = find(parent, p);
            parent.insert(x, r);
            r
        }
        let mut owner: HashMap<&(Table, Key), usize> = HashMap::new();
        for a in &accepted {
            find(&mut parent, a.item);
            for k in &a.keys {
                if let Some(&other) = owner.get(k) {
                    let (x, y) = (find(&mut parent, other), find(&mut parent, a.item));
                    if x != y {
                        // The smaller item number names the component.
                        parent.insert(x.max(y), x.min(y));
                    }
                } else {
                    owner.insert(k, a.item);
                }
            }
        }
        // Per component (by its first item): items, written keys, counter additions.
        #[derive(Default)]
        struct Comp<'a> {
            items: Vec<usize>,
            keys: Vec<&'a (Table, Key)>,
            adds: Adds,
        }
        let mut comps: BTreeMap<usize, Comp> = BTreeMap::new();
        let mut seen_keys: HashSet<&(Table, Key)> = HashSet::new();
        for a in &accepted {
            let root = find(&mut parent, a.item);
            let c = comps.entry(root).or_default();
            if !c.items.contains(&a.item) {
                c.items.push(a.item);
            }
            for k in &a.keys {
                if seen_keys.insert(k) {
                    c.keys.push(k);
                }
            }
            for (t, k, d, m) in &a.adds {
                let e = c.adds.entry((TableOrd(*t), k.clone())).or_insert((0, None));
                e.0 += d;
                e.1 = e.1.or(*m);
            }
        }
        let mut plan = Plan {
            chunks: Vec::new(),
            replay: Vec::new(),
        };
        // The transaction being filled. Whether a component fits is decided from running
        // totals (writes, bytes, keys), so packing stays linear in the batch: assembling and
        // checking the whole candidate transaction for every component cost each lead a copy
        // of up to a hundred writes.
        let guards: Vec<WriteOp> = guards
            .iter()
            .map(|(rank, key)| (TableOrd::of_rank(*rank), key))
            .filter(|(t, key)| {
                entries
                    .get(&(*t, (*key).clone()))
                    .is_none_or(|e| matches!(e.now, Now::Untouched) && e.delta == 0)
            })
            .map(|(table, key)| WriteOp::Check {
                table,
                key: key.clone(),
                cond: Cond::NotExists,
            })
            .collect();
        let guarded = || {
            let mut p = Packing::default();
            let sizes: Vec<usize> = guards
                .iter()
                .map(|op| transaction_bytes(std::slice::from_ref(op)))
                .collect();
            p.take(guards.clone(), &sizes, Adds::new());
            p
        };
        let mut cur = guarded();
        let mut cur_items: Vec<usize> = Vec::new();
        let mut stop_at: Option<usize> = None;
        for (root, c) in comps {
            if stop_at.is_some() {
                plan.replay.extend(c.items);
                continue;
            }
            let mut ops = Vec::with_capacity(c.keys.len());
            for k in c.keys {
                // Each written key belongs to one component: taken once.
                let e = entries
                    .remove(k)
                    .ok_or_else(|| Error::internal("batch view: a written key without entry"))?;
                if let Some(op) = net_op(k, e)? {
                    ops.push(op);
                }
            }
            let sizes: Vec<usize> = ops
                .iter()
                .map(|op| transaction_bytes(std::slice::from_ref(op)))
                .collect();
            // Try it in the current transaction, else in a new one; alone it must fit.
            if cur.admits(&ops, &sizes, &c.adds) {
                cur.take(ops, &sizes, c.adds);
                cur_items.extend(c.items);
                continue;
            }
            if !guarded().admits(&ops, &sizes, &c.adds) {
                stop_at = Some(root);
                plan.replay.extend(c.items);
                continue;
            }
            let full = std::mem::replace(&mut cur, guarded());
            if !cur_items.is_empty() {
                plan.chunks
                    .push((full.into_ops(), std::mem::take(&mut cur_items)));
            }
            cur.take(ops, &sizes, c.adds);
            cur_items = c.items;
        }
        if !cur_items.is_empty() {
            plan.chunks.push((cur.into_ops(), cur_items));
        }
        for (_, items) in &mut plan.chunks {
            items.sort_unstable();
        }
        plan.replay.sort_unstable();
        Ok(plan)
    }
}

/// `Table` in a sorted map (the port's enum has no order of its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TableOrd(Table);

impl TableOrd {
    fn rank(self) -> u8 {
        match self.0 {
            Table::Leads => 0,
            Table::Accounts => 1,
            Table::Outbox => 2,
        }
    }

    fn of_rank(rank: u8) -> Table {
        match rank {
            0 => Table::Leads,
            1 => Table::Accounts,
            _ => Table::Outbox,
        }
    }
}

impl PartialOrd for TableOrd {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for TableOrd {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.rank().cmp(&other.rank())
    }
}

fn assemble(ops: Vec<WriteOp>, adds: &Adds) -> Vec<WriteOp> {
    let mut out = ops;
    for ((t, k), (d, m)) in adds {
        // A zero sum changes nothing and cannot pass a bound it did not pass before.
        if *d != 0 {
            out.push(WriteOp::Add {
                table: t.0,
                key: k.clone(),
                delta: *d,
                max: *m,
            });
        }
    }
    out
}

/// Counter additions of a transaction: summed delta and bound per counter.
type Adds = BTreeMap<(TableOrd, Key), (i64, Option<i64>)>;

/// A transaction being filled with components, with the running totals that decide whether
/// another component fits: exactly [`check_transaction`]'s rules (at most
/// [`MAX_TRANSACTION_OPS`] writes, [`MAX_TRANSACTION_BYTES`] bytes, one write per item, no
/// item over [`MAX_ITEM_BYTES`]), counting only the counter additions whose sum is not zero.
#[derive(Default)]
struct Packing {
    ops: Vec<WriteOp>,
    adds: Adds,
    /// Keys of `ops`, by table (looked up without copying a key).
    keys: HashMap<Table, HashSet<Key>>,
    /// Bytes of `ops`.
    op_bytes: usize,
    /// Additions in `adds` with a non-zero sum, and their bytes.
    nonzero_adds: usize,
    add_bytes: usize,
}

/// What an `Add` on `key` counts towards [`MAX_TRANSACTION_BYTES`] (its delta does not matter).
fn add_bytes(table: Table, key: &Key) -> usize {
    transaction_bytes(&[WriteOp::Add {
        table,
        key: key.clone(),
        delta: 0,
        max: None,
    }])
}

impl Packing {
    /// Whether `ops` already write `key` of `table`.
    fn has_key(&self, table: Table, key: &Key) -> bool {
        self.keys.get(&table).is_some_and(|keys| keys.contains(key))
    }

    /// Whether this transaction with `ops` (of `sizes` bytes each) and `adds` added would pass
    /// [`check_transaction`].
    fn admits(&self, ops: &[WriteOp], sizes: &[usize], adds: &Adds) -> bool {
        let mut op_keys: HashSet<(Table, &Key)> = HashSet::with_capacity(ops.len());
        let mut bytes = self.op_bytes + self.add_bytes;
        for (op, size) in ops.iter().zip(sizes) {
            let (t, k) = op.target();
            if !op_keys.insert((t, k)) || self.has_key(t, k) {
                return false;
            }
            // A put's transaction bytes are its item's size.
            if matches!(op, WriteOp::Put { .. }) && *size > MAX_ITEM_BYTES {
                return false;
            }
            bytes += size;
        }
        let mut count = self.ops.len() + ops.len() + self.nonzero_adds;
        for ((t, k), (d, _)) in adds {
            let old = self.adds.get(&(*t, k.clone())).map_or(0, |(od, _)| *od);
            let new = old + d;
            if old != 0 {
                count -= 1;
                bytes -= add_bytes(t.0, k);
            }
            if new != 0 {
                count += 1;
                bytes += add_bytes(t.0, k);
                // A counter that is also written: two operations on one item.
                if self.has_key(t.0, k) || op_keys.contains(&(t.0, k)) {
                    return false;
                }
            }
        }
        count <= MAX_TRANSACTION_OPS && bytes <= MAX_TRANSACTION_BYTES
    }

    /// Adds `ops` and `adds` (after [`Packing::admits`] said they fit).
    fn take(&mut self, ops: Vec<WriteOp>, sizes: &[usize], adds: Adds) {
        for (op, size) in ops.iter().zip(sizes) {
            let (t, k) = op.target();
            self.keys.entry(t).or_default().insert(k.clone());
            self.op_bytes += size;
        }
        self.ops.extend(ops);
        for (key, (d, m)) in adds {
            let size = add_bytes(key.0.0, &key.1);
            let e = self.adds.entry(key).or_insert((0, None));
            if e.0 != 0 {
                self.nonzero_adds -= 1;
                self.add_bytes -= size;
            }
            e.0 += d;
            e.1 = e.1.or(m);
            if e.0 != 0 {
                self.nonzero_adds += 1;
                self.add_bytes += size;
            }
        }
    }

    /// The transaction: the writes, then one `Add` per counter whose sum is not zero.
    fn into_ops(self) -> Vec<WriteOp> {
        assemble(self.ops, &self.adds)
    }
}

/// The write that takes `key` from what the store held before the batch to what the batch left,
/// conditioned on the store still holding what the view read.
fn net_op(key: &(Table, Key), e: Entry) -> Result<Option<WriteOp>, Error> {
    let (table, key) = (key.0, key.1.clone());
    let cond = match &e.base {
        Base::Present(i) => Cond::Version(i.version),
        Base::Absent => Cond::NotExists,
        Base::Unknown if e.must_be_absent => Cond::NotExists,
        Base::Unknown => Cond::Always,
    };
    if e.delta != 0 && !matches!(e.now, Now::Untouched) {
        return Err(Error::internal(
            "batch view: an item both written and counted in one batch",
        ));
    }
    Ok(match e.now {
        Now::Untouched => None,
        Now::Item(item) => Some(WriteOp::Put { table, item, cond }),
        // Created and deleted within the batch: nothing to write.
        Now::Deleted if cond == Cond::NotExists => None,
        Now::Deleted => Some(WriteOp::Delete { table, key, cond }),
    })
}

#[async_trait]
impl Store for BatchView {
    async fn get(&self, table: Table, key: &Key) -> Result<Option<Item>, Error> {
        Ok(self
            .batch_get(table, std::slice::from_ref(key))
            .await?
            .pop())
    }

    async fn batch_get(&self, table: Table, keys: &[Key]) -> Result<Vec<Item>, Error> {
        self.learn(table, keys).await?;
        let st = lock(&self.state)?;
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            if let Some(e) = st.entries.get(&(table, k.clone()))
                && let Some(Some(mut item)) = e.visible()
            {
                item.key = k.clone();
                out.push(item);
            }
        }
        Ok(out)
    }

    async fn query(&self, req: &QueryReq) -> Result<Page, Error> {
        if req.index.is_some() {
            return Err(Error::internal(
                "batch view: index queries are not served inside a batch",
            ));
        }
        let in_range = |t: Table, k: &Key| {
            t == req.table
                && k.pk == req.pk
                && sk_matches(&k.sk, &req.sk)
                && req.start_after.as_ref().is_none_or(|p| {
                    if req.descending {
                        k.sk < p.key.sk
                    } else {
                        k.sk > p.key.sk
                    }
                })
        };
        // The batch's own items of the range, and how many of the store's it hides.
        let (mine, hidden) = {
            let st = lock(&self.state)?;
            let mut mine: BTreeMap<String, Option<Item>> = BTreeMap::new();
            let mut hidden = 0u32;
            let rank = TableOrd(req.table).rank();
            let from = match &req.sk {
                SkCond::BeginsWith(p) | SkCond::Ge(p) | SkCond::Gt(p) | SkCond::Between(p, _) => {
                    p.clone()
                }
                _ => String::new(),
            };
            let start = (rank, req.pk.clone(), from);
            for (_, pk, sk) in st.written.range(start..) {
                if pk != &req.pk {
                    break;
                }
                if let SkCond::BeginsWith(p) = &req.sk
                    && !sk.starts_with(p.as_str())
                {
                    break;
                }
                let k = Key::new(pk.clone(), sk.clone());
                let t = req.table;
                if !in_range(t, &k) {
                    continue;
                }
                let Some(e) = st.entries.get(&(t, k.clone())) else {
                    continue;
                };
                match &e.now {
                    Now::Item(i) => {
                        mine.insert(k.sk.clone(), Some(i.clone()));
                    }
                    Now::Deleted => {
                        mine.insert(k.sk.clone(), None);
                        hidden += 1;
                    }
                    Now::Untouched => {}
                }
            }
            (mine, hidden)
        };
        let mut base_req = req.clone();
        base_req.limit = req.limit.saturating_add(hidden);
        let cache_key = format!("{base_req:?}");
        let cached = lock(&self.state)?.queries.get(&cache_key).cloned();
        let page = match cached {
            Some(p) => p,
            None => {
                let p = self.base.query(&base_req).await?;
                lock(&self.state)?.queries.insert(cache_key, p.clone());
                p
            }
        };
        let mut merged: BTreeMap<String, Item> = BTreeMap::new();
        for i in page.items {
            merged.insert(i.key.sk.clone(), i);
        }
        // Items of the store past its page may sort before the batch's own: only batch items up
        // to the store page's end count when the store had more.
        let bound = page
            .last
            .as_ref()
            .map(|p| p.key.sk.clone())
            .filter(|_| base_req.limit > 0);
        for (sk, item) in mine {
            if let Some(b) = &bound {
                let beyond = if req.descending { &sk < b } else { &sk > b };
                if beyond && item.is_some() {
                    continue;
                }
            }
            match item {
                Some(i) => {
                    merged.insert(sk, i);
                }
                None => {
                    merged.remove(&sk);
                }
            }
        }
        let mut items: Vec<Item> = merged.into_values().collect();
        if req.descending {
            items.reverse();
        }
        items.truncate(req.limit as usize);
        let last = match items.last() {
            Some(i) if items.len() == req.limit as usize => Some(Position {
                key: i.key.clone(),
                index: None,
            }),
            _ => None,
        };
        Ok(Page { items, last })
    }

    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        check_transaction(&ops)?;
        // What conditions need and the view does not know yet is read first.
        let mut to_read: HashMap<Table, Vec<Key>> = HashMap::new();
        for op in &ops {
            let needs = match op {
                WriteOp::Put { cond, .. }
                | WriteOp::Delete { cond, .. }
                | WriteOp::Check { cond, .. } => matches!(cond, Cond::Exists | Cond::Version(_)),
                WriteOp::Add { max, .. } => max.is_some(),
            };
            if needs {
                let (t, k) = op.target();
                to_read.entry(t).or_default().push(k.clone());
            }
        }
        for (t, keys) in to_read {
            self.learn(t, &keys).await?;
        }
        let mut st = lock(&self.state)?;
        // Conditions first, all of them, so that a failure writes nothing.
        for (i, op) in ops.iter().enumerate() {
            let (t, k) = op.target();
            let entry = st.entries.get(&(t, k.clone()));
            let visible = entry.and_then(Entry::visible);
            let holds = match op {
                WriteOp::Put { cond, .. }
                | WriteOp::Delete { cond, .. }
                | WriteOp::Check { cond, .. } => match (cond, &visible) {
                    (Cond::Always, _) => true,
                    // Unread and unwritten: assumed absent, and the commit says so.
                    (Cond::NotExists, None) => true,
                    (Cond::NotExists, Some(v)) => v.is_none(),
                    (Cond::Exists, v) => v.as_ref().is_some_and(Option::is_some),
                    (Cond::Version(want), v) => v
                        .as_ref()
                        .and_then(Option::as_ref)
                        .is_some_and(|i| i.version == *want),
                },
                WriteOp::Add { delta, max, .. } => match max {
                    None => true,
                    Some(m) => {
                        let cur = visible.flatten().map_or(0, |i| i.counter);
                        cur + delta <= *m
                    }
                },
            };
            if !holds {
                return Err(StoreError::ConditionFailed(i));
            }
        }
        let mut accepted = Accepted {
            item: st.current_item,
            keys: Vec::new(),
            adds: Vec::new(),
        };
        let mut st_written = Vec::new();
        let mut st_guards = Vec::new();
        for op in ops {
            let (t, k) = op.target();
            let k = k.clone();
            let e = st
                .entries
                .entry((t, k.clone()))
                .or_insert_with(Entry::unknown);
            match op {
                WriteOp::Put { item, cond, .. } => {
                    st_written.push((TableOrd(t).rank(), k.pk.clone(), k.sk.clone()));
                    if matches!(e.base, Base::Unknown)
                        && matches!(e.now, Now::Untouched)
                        && cond == Cond::NotExists
                    {
                        e.must_be_absent = true;
                    }
                    e.now = Now::Item(item);
                    accepted.keys.push((t, k));
                }
                WriteOp::Delete { cond, .. } => {
                    st_written.push((TableOrd(t).rank(), k.pk.clone(), k.sk.clone()));
                    if matches!(e.base, Base::Unknown)
                        && matches!(e.now, Now::Untouched)
                        && cond == Cond::NotExists
                    {
                        e.must_be_absent = true;
                    }
                    e.now = Now::Deleted;
                    accepted.keys.push((t, k));
                }
                WriteOp::Add { delta, max, .. } => {
                    e.delta += delta;
                    e.max = e.max.or(max);
                    accepted.adds.push((t, k, delta, max));
                }
                WriteOp::Check { cond, .. } => {
                    if cond == Cond::NotExists {
                        st_guards.push((TableOrd(t).rank(), k));
                    }
                }
            }
        }
        if self.base.finds_leads_by_name_city() {
            for (t, k) in &accepted.keys {
                if *t == Table::Leads && schema::lead_id_of(&k.sk).is_some() {
                    let place = match &st.entries[&(*t, k.clone())].now {
                        Now::Item(i) => name_city_of(&i.body),
                        _ => None,
                    };
                    st.place_lead(k, place);
                }
            }
        }
        st.guards.extend(st_guards);
        st.written.extend(st_written);
        st.accepted.push(accepted);
        Ok(())
    }

    fn finds_leads_by_name_city(&self) -> bool {
        self.base.finds_leads_by_name_city()
    }

    fn writes_lead_index_keys(&self) -> bool {
        self.base.writes_lead_index_keys()
    }

    /// The store's leads at that name and city that the batch left there, and the batch's own.
    async fn leads_by_name_city(
        &self,
        partition: &str,
        name_fold: &str,
        city_fold: &str,
        limit: u32,
    ) -> Result<Vec<String>, Error> {
        let (mine, moved) = {
            let st = lock(&self.state)?;
            let at = (
                partition.to_string(),
                name_fold.to_string(),
                city_fold.to_string(),
            );
            let mine: Vec<String> = st
                .at_place
                .get(&at)
                .into_iter()
                .flatten()
                .cloned()
                .collect();
            (mine, st.places.len())
        };
        // Enough of the store's to fill the answer after dropping every lead the batch wrote.
        let stored = self
            .base
            .leads_by_name_city(
                partition,
                name_fold,
                city_fold,
                limit.saturating_add(u32::try_from(moved).unwrap_or(u32::MAX)),
            )
            .await?;
        let st = lock(&self.state)?;
        let mut ids: BTreeSet<String> = stored
            .into_iter()
            .filter(|id| {
                let key = Key::new(partition, format!("{}{id}", schema::LEAD_PREFIX));
                !st.places.contains_key(&key)
            })
            .collect();
        ids.extend(
            mine.iter()
                .filter_map(|sk| schema::lead_id_of(sk).map(str::to_string)),
        );
        Ok(ids.into_iter().take(limit as usize).collect())
    }

    async fn scan(
        &self,
        _table: Table,
        _start_after: Option<Key>,
        _limit: u32,
    ) -> Result<Page, Error> {
        Err(Error::internal(
            "batch view: scans are not served inside a batch",
        ))
    }
}
