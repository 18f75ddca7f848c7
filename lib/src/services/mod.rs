//! Use cases. Services speak domain types and the ports; they never see HTTP or AWS.

pub mod accounts;
pub mod enrich;
pub mod leads;
pub mod limits;
pub mod plan;
pub mod writes;

use std::sync::Arc;

use crate::domain::cursor::CursorKey;
use crate::domain::event::OutboxEvent;
use crate::error::{Error, Result};
use crate::ports::{Clock, IdSource, Item, Store, Table, WriteOp};
use crate::schema;

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

    /// The outbox write that records `event` for `account_id` in the same transaction as the
    /// change it describes.
    pub fn outbox_put(
        &self,
        account_id: &str,
        event: &str,
        data: serde_json::Value,
    ) -> Result<WriteOp> {
        Ok(self.outbox_event(account_id, event, data, None)?.1)
    }

    /// The outbox write for an event, optionally as a member of a batch group; also returns the
    /// event's key.
    pub fn outbox_event(
        &self,
        account_id: &str,
        event: &str,
        data: serde_json::Value,
        group: Option<&str>,
    ) -> Result<(crate::ports::Key, WriteOp)> {
        let now_ms = self.clock.now_ms();
        let id = self.ids.time_ordered(now_ms).to_string();
        let ev = OutboxEvent {
            id: id.clone(),
            account_id: account_id.to_string(),
            event: event.to_string(),
            timestamp: now_ms.div_euclid(1000),
            data,
            group: group.map(str::to_string),
        };
        let key = schema::outbox_key(account_id, &id);
        let mut item = Item::new(key.clone(), to_body(&ev)?);
        item.expires_at = Some(ev.timestamp + schema::OUTBOX_RETENTION_SECS);
        Ok((
            key,
            WriteOp::Put {
                table: Table::Outbox,
                item,
                cond: crate::ports::Cond::NotExists,
            },
        ))
    }
}

/// Serializes a stored document.
pub fn to_body<T: serde::Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(Error::internal)
}

/// Deserializes a stored document.
pub fn from_body<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T> {
    serde_json::from_slice(b).map_err(|e| Error::internal(format!("corrupt stored document: {e}")))
}
