//! A store that misbehaves on purpose, for the reliability tests: a chosen fraction of calls
//! fail the way DynamoDB fails in production.
//!
//! Each injected fault is one the adapters really surface through the store port:
//! - `Throttled`: `ProvisionedThroughputExceeded` / `ThrottlingException` (nothing happened;
//!   [`Error::Unavailable`]);
//! - `Canceled`: `TransactionCanceled` for a `TransactionConflict` that outlived the adapter's
//!   own retries (nothing happened; a 409 conflict);
//! - `TimedOutAfterCommit`: the write happened but the answer was lost (a timeout after
//!   DynamoDB committed): the caller sees [`Error::Unavailable`] for a change that is stored.
//!   This is the fault that turns naive retries into duplicates.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use klozeo_core::Error;
use klozeo_core::error::Code;
use klozeo_core::ports::{Item, Key, Page, QueryReq, Store, StoreError, Table, WriteOp};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How many faults of each kind were injected.
#[derive(Debug, Default)]
pub struct FaultCounts {
    /// Throttled calls.
    pub throttled: AtomicU64,
    /// Canceled transactions.
    pub canceled: AtomicU64,
    /// Transactions that committed but answered a timeout.
    pub timed_out_after_commit: AtomicU64,
    /// Calls that went through untouched.
    pub passed: AtomicU64,
}

impl FaultCounts {
    /// Every injected fault.
    pub fn injected(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
            + self.canceled.load(Ordering::Relaxed)
            + self.timed_out_after_commit.load(Ordering::Relaxed)
    }
}

/// A [`Store`] in front of a real one that injects faults into `rate_per_mille` of the calls.
pub struct FaultyStore {
    inner: Arc<dyn Store>,
    rate_per_mille: AtomicU32,
    enabled: AtomicBool,
    rng: Mutex<StdRng>,
    /// What was injected so far.
    pub counts: FaultCounts,
}

enum Roll {
    Pass,
    Throttle,
    Cancel,
    CommitThenTimeout,
}

impl FaultyStore {
    /// Wraps `inner`, failing `rate_per_mille` of calls (seeded, so a failure replays).
    pub fn new(inner: Arc<dyn Store>, rate_per_mille: u32, seed: u64) -> Arc<FaultyStore> {
        Arc::new(FaultyStore {
            inner,
            rate_per_mille: AtomicU32::new(rate_per_mille),
            enabled: AtomicBool::new(true),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            counts: FaultCounts::default(),
        })
    }

    /// Turns injection on or off (a test checks its invariants with faults off).
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::SeqCst);
    }

    fn roll(&self, write: bool) -> Roll {
        if !self.enabled.load(Ordering::SeqCst) {
            return Roll::Pass;
        }
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        if rng.random_range(0..1000) >= self.rate_per_mille.load(Ordering::Relaxed) {
            self.counts.passed.fetch_add(1, Ordering::Relaxed);
            return Roll::Pass;
        }
        match (write, rng.random_range(0..3)) {
            (true, 0) => Roll::Cancel,
            (true, 1) => Roll::CommitThenTimeout,
            _ => Roll::Throttle,
        }
    }

    fn throttled(&self) -> Error {
        self.counts.throttled.fetch_add(1, Ordering::Relaxed);
        Error::Unavailable("injected: ProvisionedThroughputExceededException".into())
    }
}

#[async_trait::async_trait]
impl Store for FaultyStore {
    async fn get(&self, table: Table, key: &Key) -> Result<Option<Item>, Error> {
        match self.roll(false) {
            Roll::Pass => self.inner.get(table, key).await,
            _ => Err(self.throttled()),
        }
    }

    async fn batch_get(&self, table: Table, keys: &[Key]) -> Result<Vec<Item>, Error> {
        match self.roll(false) {
            Roll::Pass => self.inner.batch_get(table, keys).await,
            _ => Err(self.throttled()),
        }
    }

    async fn query(&self, req: &QueryReq) -> Result<Page, Error> {
        match self.roll(false) {
            Roll::Pass => self.inner.query(req).await,
            _ => Err(self.throttled()),
        }
    }

    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        match self.roll(true) {
            Roll::Pass => self.inner.transact(ops).await,
            Roll::Throttle => Err(self.throttled().into()),
            Roll::Cancel => {
                self.counts.canceled.fetch_add(1, Ordering::Relaxed);
                Err(StoreError::Other(Error::Conflict {
                    code: Code::Conflict,
                    message: "injected: TransactionCanceledException (TransactionConflict)".into(),
                }))
            }
            Roll::CommitThenTimeout => {
                self.inner.transact(ops).await?;
                self.counts
                    .timed_out_after_commit
                    .fetch_add(1, Ordering::Relaxed);
                Err(Error::Unavailable("injected: timeout after the commit".into()).into())
            }
        }
    }

    async fn scan(
        &self,
        table: Table,
        start_after: Option<Key>,
        limit: u32,
    ) -> Result<Page, Error> {
        match self.roll(false) {
            Roll::Pass => self.inner.scan(table, start_after, limit).await,
            _ => Err(self.throttled()),
        }
    }
}
