//! Outbox records: every change writes its event in the same transaction as the change, and a
//! batch's member records are folded into one grouped event when the batch finishes.

use crate::domain::account::Tenant;
use crate::domain::event::{EventKind, OutboxEvent};
use crate::error::Result;
use crate::ports::{Cond, Item, Key, QueryReq, SkCond, Table, WriteOp};
use crate::schema;
use crate::services::{Deps, from_body, to_body};

/// Whether a write records its own event or a member of a batch's grouped event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventMode<'a> {
    /// `lead.created` / `lead.updated` / `lead.deleted` / `lead.scored`.
    Single,
    /// A member record of the batch (or rescoring run) with this group id.
    Member(&'a str),
}

impl EventMode<'_> {
    /// The group id, for member records.
    pub fn group(&self) -> Option<&str> {
        match self {
            EventMode::Single => None,
            EventMode::Member(g) => Some(g),
        }
    }
}

/// The outbox write that records `kind` with `data` for the tenant, in the same transaction
/// as the change it describes; `group` marks a member of a batch's grouped event.
pub fn event_op(
    deps: &Deps,
    account_id: &str,
    kind: EventKind,
    data: serde_json::Value,
    group: Option<&str>,
) -> Result<WriteOp> {
    let now_ms = deps.clock.now_ms();
    let id = deps.ids.time_ordered(now_ms).to_string();
    let ev = OutboxEvent {
        id: id.clone(),
        account_id: account_id.to_string(),
        event: kind,
        timestamp: now_ms.div_euclid(1000),
        data,
        group: group.map(str::to_string),
    };
    let mut item = Item::new(schema::outbox_key(account_id, &id), to_body(&ev)?);
    item.expires_at = Some(ev.timestamp + schema::OUTBOX_RETENTION_SECS);
    Ok(WriteOp::Put {
        table: Table::Outbox,
        item,
        cond: Cond::NotExists,
    })
}

/// The event write of a change in `mode`: the single kind, or a member of the grouped kind.
pub fn mode_event_op(
    deps: &Deps,
    account_id: &str,
    mode: EventMode<'_>,
    single: EventKind,
    grouped: EventKind,
    data: serde_json::Value,
) -> Result<WriteOp> {
    match mode {
        EventMode::Single => event_op(deps, account_id, single, data, None),
        EventMode::Member(g) => event_op(deps, account_id, grouped, data, Some(g)),
    }
}

/// A fresh batch group id.
pub fn new_group(deps: &Deps) -> String {
    deps.ids.random().to_string()
}

/// Folds a finished batch's member records into one grouped event with `data` (which carries
/// `count`). The member records were written atomically with each item, so nothing is lost if
/// this step does not run; it only turns N notifications into one.
pub async fn finish_group(
    deps: &Deps,
    t: &Tenant,
    group: &str,
    kind: EventKind,
    data: serde_json::Value,
) -> Result<()> {
    let expected = data["count"].as_u64().unwrap_or(0) as u32;
    let page = deps
        .store
        .query(&QueryReq {
            table: Table::Outbox,
            index: None,
            pk: schema::outbox_key(&t.account_id, "").pk,
            sk: SkCond::BeginsWith("E#".into()),
            start_after: None,
            descending: true,
            limit: (expected * 2 + 50).min(2000),
        })
        .await?;
    let members: Vec<Key> = page
        .items
        .iter()
        .filter(|i| {
            from_body::<OutboxEvent>(&i.body).is_ok_and(|e| e.group.as_deref() == Some(group))
        })
        .map(|i| i.key.clone())
        .collect();
    let delete = |k: &Key| WriteOp::Delete {
        table: Table::Outbox,
        key: k.clone(),
        cond: Cond::Always,
    };
    let mut first = vec![event_op(deps, &t.account_id, kind, data, None)?];
    let mut chunks = members.chunks(90);
    if let Some(c) = chunks.next() {
        first.extend(c.iter().map(delete));
    }
    deps.store.transact(first).await?;
    for c in chunks {
        deps.store.transact(c.iter().map(delete).collect()).await?;
    }
    Ok(())
}

/// [`finish_group`] for a batch's `{ids, count}` event; nothing when no item succeeded.
pub async fn finish_id_group(
    deps: &Deps,
    t: &Tenant,
    group: &str,
    kind: EventKind,
    ids: &[String],
) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    finish_group(
        deps,
        t,
        group,
        kind,
        serde_json::json!({ "ids": ids, "count": ids.len() }),
    )
    .await
}
