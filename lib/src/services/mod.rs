//! Use cases, grouped by capability. Each operation lives in exactly one service; the protocol
//! edges (REST, MCP, Lambda event handlers, the CLI) only translate their input, call it, and
//! map the typed result or [`crate::Error`].
//!
//! Dependencies between services run one way (no cycles):
//! `leads` (read and query) ← `notes` ← `ingest` (push, dedup, batches) → `scoring` (rules,
//! rescoring) → `leads`; `attributes` → `ingest`; `webhooks` (subscriptions, dispatch,
//! delivery) → `scoring`; `jobs` (the worker's messages) → `webhooks`, `scoring`; `events`
//! (outbox records and batch groups) and `txn` (named transaction conditions) are used by all.

pub mod accounts;
pub mod analytics;
pub mod attributes;
pub(crate) mod batch;
pub mod events;
pub mod export;
pub mod import;
pub mod ingest;
pub mod jobs;
pub mod leads;
pub mod leads_indexed;
pub mod limits;
pub mod notes;
pub mod oauth;
pub mod plan;
pub mod scoring;
pub mod txn;
pub mod webhooks;

use std::sync::Arc;

use crate::domain::cursor::CursorKey;
use crate::error::{Error, Result};
use crate::ports::{Clock, IdSource, Item, Store};

/// What every service needs: the ports, built once per process and shared.
#[derive(Clone)]
pub struct Deps {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// The id source.
    pub ids: Arc<dyn IdSource>,
    /// The cursor signing key.
    pub cursor_key: CursorKey,
    /// Which accounts have webhooks (whether a change records its outbox event).
    pub hooks: Arc<crate::services::events::HookPresence>,
}

impl Deps {
    /// Reads every item of a key range, page by page (for ranges known to be small: an
    /// account's keys, a lead's notes).
    pub async fn query_all(&self, mut req: crate::ports::QueryReq) -> Result<Vec<Item>> {
        let mut out = Vec::new();
        loop {
            let page = self.store.query(&req).await?;
            out.extend(page.items);
            match page.last {
                Some(p) => req.start_after = Some(p),
                None => return Ok(out),
            }
        }
    }
}

/// Serializes a stored document.
pub fn to_body<T: serde::Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(Error::internal)
}

/// Deserializes a stored document.
pub fn from_body<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T> {
    let corrupt =
        |e: &dyn std::fmt::Display| Error::internal(format!("corrupt stored document: {e}"));
    // One UTF-8 check of the whole body instead of one per string: `from_slice` validates
    // every string on its own, which was a tenth of decoding a lead.
    let text = std::str::from_utf8(b).map_err(|e| corrupt(&e))?;
    serde_json::from_str(text).map_err(|e| corrupt(&e))
}

/// Full-jitter exponential backoff after a lost race, so many writers contending for one item
/// spread out instead of colliding again in lockstep.
pub(crate) async fn backoff(attempt: u32) {
    let cap = (4u64 << attempt.min(6)).min(250);
    let ms = 1 + rand::random::<u64>() % cap;
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
}
