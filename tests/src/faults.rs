//! A store and a jobs queue that misbehave on purpose, for the reliability tests: a chosen
//! fraction of calls fail the way DynamoDB and SQS fail in production.
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
use klozeo_core::ports::{
    Item, JobQueue, JobSource, Key, OutMessage, Page, QueryReq, Received, Store, StoreError, Table,
    WriteOp,
};
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

/// How many faults the [`FaultyQueue`] injected, by kind.
#[derive(Debug, Default)]
pub struct QueueFaultCounts {
    /// Acknowledgements dropped: the work was done, the message stays and comes back.
    pub acks_dropped: AtomicU64,
    /// Messages handed out twice in one receive (a duplicate delivery).
    pub duplicated: AtomicU64,
    /// Sends refused before anything was queued.
    pub sends_failed: AtomicU64,
    /// Sends that queued the messages and then answered a failure (the caller's retry queues
    /// them again).
    pub sends_lost_answer: AtomicU64,
}

impl QueueFaultCounts {
    /// Every injected fault.
    pub fn injected(&self) -> u64 {
        self.acks_dropped.load(Ordering::Relaxed)
            + self.duplicated.load(Ordering::Relaxed)
            + self.sends_failed.load(Ordering::Relaxed)
            + self.sends_lost_answer.load(Ordering::Relaxed)
    }
}

/// The jobs queue (both sides) in front of a real one, misbehaving the way SQS is allowed to:
/// at-least-once delivery means an acknowledgement can be lost (the message comes back after
/// its lease) and a message can be received twice; a send can fail, or succeed and answer a
/// failure. `rate_per_mille` of the calls (of each message, for receives) misbehave.
///
/// The lease a receiver asks for is shortened to `lease`, so a message whose
/// acknowledgement was dropped comes back within the test's time. The first acknowledgement
/// and the first message received while injection is on always misbehave, so a run exercises
/// both paths however few messages it sees (a small workload on the emulator once saw no
/// dropped acknowledgement at all).
pub struct FaultyQueue<Q> {
    inner: Arc<Q>,
    rate_per_mille: u32,
    lease: std::time::Duration,
    enabled: AtomicBool,
    first_ack_dropped: AtomicBool,
    first_receive_duplicated: AtomicBool,
    rng: Mutex<StdRng>,
    /// What was injected so far.
    pub counts: QueueFaultCounts,
}

impl<Q> FaultyQueue<Q> {
    /// Wraps `inner` (seeded, so a failure replays).
    pub fn new(
        inner: Arc<Q>,
        rate_per_mille: u32,
        lease: std::time::Duration,
        seed: u64,
    ) -> Arc<Self> {
        Arc::new(FaultyQueue {
            inner,
            rate_per_mille,
            lease,
            enabled: AtomicBool::new(true),
            first_ack_dropped: AtomicBool::new(false),
            first_receive_duplicated: AtomicBool::new(false),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            counts: QueueFaultCounts::default(),
        })
    }

    /// Turns injection on or off.
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::SeqCst);
    }

    /// Whether this is the first call of its kind (`done` tracks it) while injection is on.
    fn first(&self, done: &AtomicBool) -> bool {
        self.enabled.load(Ordering::SeqCst) && !done.swap(true, Ordering::SeqCst)
    }

    /// Whether this call misbehaves, and a second roll (0..2) for which way.
    fn roll(&self) -> Option<u32> {
        if !self.enabled.load(Ordering::SeqCst) {
            return None;
        }
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        (rng.random_range(0..1000) < self.rate_per_mille).then(|| rng.random_range(0..2))
    }
}

#[async_trait::async_trait]
impl<Q: JobQueue + 'static> JobQueue for FaultyQueue<Q> {
    async fn send(&self, messages: Vec<OutMessage>) -> Result<(), Error> {
        match self.roll() {
            None => self.inner.send(messages).await,
            Some(0) => {
                self.counts.sends_failed.fetch_add(1, Ordering::Relaxed);
                Err(Error::Unavailable(
                    "injected: SQS SendMessage failed".into(),
                ))
            }
            Some(_) => {
                self.inner.send(messages).await?;
                self.counts
                    .sends_lost_answer
                    .fetch_add(1, Ordering::Relaxed);
                Err(Error::Unavailable(
                    "injected: SQS SendMessage timed out after queueing".into(),
                ))
            }
        }
    }

    async fn dead_letter(&self, body: String) -> Result<(), Error> {
        self.inner.dead_letter(body).await
    }

    fn max_delay_secs(&self) -> u32 {
        self.inner.max_delay_secs()
    }
}

#[async_trait::async_trait]
impl<Q: JobSource + 'static> JobSource for FaultyQueue<Q> {
    async fn receive(&self, max: u32, _lease: std::time::Duration) -> Result<Vec<Received>, Error> {
        let got = self.inner.receive(max, self.lease).await?;
        let mut out = Vec::with_capacity(got.len());
        for m in got {
            if self.first(&self.first_receive_duplicated) || self.roll().is_some() {
                self.counts.duplicated.fetch_add(1, Ordering::Relaxed);
                out.push(m.clone());
            }
            out.push(m);
        }
        Ok(out)
    }

    async fn ack(&self, handle: &str) -> Result<(), Error> {
        if self.first(&self.first_ack_dropped) || self.roll().is_some() {
            self.counts.acks_dropped.fetch_add(1, Ordering::Relaxed);
            return Err(Error::Unavailable(
                "injected: SQS DeleteMessage failed (receipt handle expired)".into(),
            ));
        }
        self.inner.ack(handle).await
    }

    async fn wait(&self) {
        self.inner.wait().await
    }
}
