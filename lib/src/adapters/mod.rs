//! Adapters: implementations of the ports.
//!
//! `sqlite` is the embedded, crash-safe store for one machine; `dynamodb` is the production store.
//! AWS SDK types appear only inside `dynamodb` (and the composition root that builds its client).

pub mod dynamodb;
pub mod http_sender;
pub mod local_files;
pub mod metadata_fetch;
pub mod s3;
pub mod sqlite;
mod sqlite_leads;
pub mod sqs;
pub mod store_queue;
