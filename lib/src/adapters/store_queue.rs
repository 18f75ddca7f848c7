//! The jobs queue kept in the store itself, for one machine (`klozeo serve`) and for tests:
//! the same durability as every other write (an acknowledged send survives kill -9), and an
//! in-process worker that claims messages with a lease.
//!
//! A message is an item of the accounts table under [`schema::QUEUE_PK`] whose sort key starts
//! with the time it becomes due, so the due messages are one key range. Claiming moves a
//! message to `now + lease` in one conditional transaction (only one worker wins it); a worker
//! that dies before acknowledging leaves it to reappear when the lease ends.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::Error;
use crate::ports::{
    Clock, Cond, IdSource, Item, JobQueue, JobSource, Key, OutMessage, QueryReq, Received, SkCond,
    Store, Table, WriteOp,
};
use crate::schema;

/// Longest delay a message may carry here; longer waits are done in hops like on SQS.
const MAX_DELAY_SECS: u32 = 7 * 24 * 3600;
/// How long a dead-lettered message is kept for an operator.
const DEAD_LETTER_RETENTION_SECS: i64 = 14 * 24 * 3600;

/// The queue in the store.
#[derive(Clone)]
pub struct StoreQueue {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdSource>,
    wake: Arc<tokio::sync::Notify>,
}

fn due_key(due_ms: i64, id: &str) -> Key {
    Key::new(schema::QUEUE_PK, format!("{:016x}#{id}", due_ms.max(0)))
}

impl StoreQueue {
    /// A queue over `store`.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, ids: Arc<dyn IdSource>) -> Self {
        StoreQueue {
            store,
            clock,
            ids,
            wake: Arc::new(tokio::sync::Notify::new()),
        }
    }
}

#[async_trait]
impl JobSource for StoreQueue {
    async fn receive(&self, max: u32, lease: Duration) -> Result<Vec<Received>, Error> {
        let now = self.clock.now_ms();
        let page = self
            .store
            .query(&QueryReq {
                table: Table::Accounts,
                index: None,
                pk: schema::QUEUE_PK.into(),
                sk: SkCond::Le(format!("{:016x}~", now.max(0))),
                start_after: None,
                descending: false,
                limit: max,
            })
            .await?;
        let mut out = Vec::new();
        for item in page.items {
            let id = self.ids.random().to_string();
            let handle = due_key(now + lease.as_millis() as i64, &id);
            let mut moved = Item::new(handle.clone(), item.body.clone());
            moved.counter = item.counter + 1;
            moved.expires_at = item.expires_at;
            let ops = vec![
                WriteOp::Delete {
                    table: Table::Accounts,
                    key: item.key.clone(),
                    cond: Cond::Version(item.version),
                },
                WriteOp::Put {
                    table: Table::Accounts,
                    item: moved,
                    cond: Cond::NotExists,
                },
            ];
            match self.store.transact(ops).await {
                Ok(()) => out.push(Received {
                    body: String::from_utf8_lossy(&item.body).into_owned(),
                    receive_count: (item.counter + 1) as u32,
                    handle: handle.sk,
                }),
                // Another worker claimed it first.
                Err(crate::ports::StoreError::ConditionFailed(_)) => {}
                Err(crate::ports::StoreError::Other(e)) => return Err(e),
            }
        }
        Ok(out)
    }

    async fn ack(&self, handle: &str) -> Result<(), Error> {
        self.store
            .transact(vec![WriteOp::Delete {
                table: Table::Accounts,
                key: Key::new(schema::QUEUE_PK, handle),
                cond: Cond::Always,
            }])
            .await
            .map_err(Error::from)
    }

    async fn wait(&self) {
        // Woken by a send of this process, or polls: another process (a second `klozeo`
        // command on the same data directory) may have sent.
        let _ = tokio::time::timeout(Duration::from_millis(200), self.wake.notified()).await;
    }
}

#[async_trait]
impl JobQueue for StoreQueue {
    async fn send(&self, messages: Vec<OutMessage>) -> Result<(), Error> {
        let now = self.clock.now_ms();
        let ops: Vec<WriteOp> = messages
            .into_iter()
            .map(|m| {
                let key = due_key(
                    now + i64::from(m.delay_secs.min(MAX_DELAY_SECS)) * 1000,
                    &self.ids.random().to_string(),
                );
                WriteOp::Put {
                    table: Table::Accounts,
                    item: Item::new(key, m.body.into_bytes()),
                    cond: Cond::NotExists,
                }
            })
            .collect();
        for chunk in ops.chunks(25) {
            self.store.transact(chunk.to_vec()).await?;
        }
        self.wake.notify_waiters();
        Ok(())
    }

    async fn dead_letter(&self, body: String) -> Result<(), Error> {
        tracing::warn!(message = %body, "job failed for good; kept in the dead-letter list");
        let now = self.clock.now_ms();
        let mut item = Item::new(
            Key::new("DLQ", format!("{:016x}#{}", now.max(0), self.ids.random())),
            body.into_bytes(),
        );
        item.expires_at = Some(now / 1000 + DEAD_LETTER_RETENTION_SECS);
        self.store
            .transact(vec![WriteOp::Put {
                table: Table::Accounts,
                item,
                cond: Cond::Always,
            }])
            .await
            .map_err(Error::from)
    }

    fn max_delay_secs(&self) -> u32 {
        MAX_DELAY_SECS
    }
}
