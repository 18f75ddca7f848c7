//! Ports: the traits the services need from the outside world.
//!
//! Nothing here names a backend; the adapters implement these traits for SQLite and DynamoDB.

mod client_metadata;
mod clock;
mod lead_index;
mod objects;
mod queue;
mod store;
mod webhook_sender;

pub use client_metadata::MetadataFetcher;
pub use clock::{Clock, IdSource, SystemClock, UuidIds};
pub use lead_index::{LeadIndex, LeadScan};
pub use objects::{Download, ObjectStore, Upload};
pub use queue::{JobQueue, JobSource, OutMessage, Received};
pub use store::{
    Cond, IndexKey, Item, Key, MAX_ITEM_BYTES, MAX_TRANSACTION_BYTES, MAX_TRANSACTION_OPS, Page,
    Position, QueryReq, SkCond, Store, StoreError, Table, WriteOp, check_transaction, item_size,
    transaction_bytes,
};
pub use webhook_sender::{Attempt, Outgoing, WebhookSender};
