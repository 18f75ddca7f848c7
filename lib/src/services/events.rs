//! Outbox records: every change writes its event in the same transaction as the change. The
//! items of a batch (or of a rescoring run) write member records under their group's key
//! prefix, which are folded into grouped events when the batch finishes, or by the dispatcher
//! if the batch died before it could.
//!
//! An account that has never had a webhook records no events: nothing would ever read them,
//! and writing, dispatching and deleting them was a sixth of a bulk load's store work. Such a
//! change carries a check instead, that the account's webhook marker is still absent
//! ([`HookPresence`]), so a change committed after the first webhook was created always
//! records its event.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::domain::event::{EventKind, OutboxEvent};
use crate::error::Result;
use crate::ports::{Cond, Item, Key, QueryReq, SkCond, Table, WriteOp};
use crate::schema;
use crate::services::{Deps, from_body, to_body};

/// Most leads listed in one grouped event: a larger group (a rescoring run that changed many
/// scores) is sent as several events of this size, since one stored event must fit an item.
pub const MAX_GROUP_EVENT_LEADS: usize = 1000;

/// Whether a write records its own event or a member of a batch's grouped event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventMode<'a> {
    /// `lead.created` / `lead.updated` / `lead.deleted` / `lead.scored`.
    Single,
    /// A member record of the batch (or rescoring run) with this group id.
    Member(&'a str),
}

/// How long this process trusts having read that an account has no webhook. A webhook created
/// through another process (another Lambda instance) is seen at most this late; until then
/// that process's writes fail their marker check and retry, so no event is lost meanwhile.
const NO_HOOKS_TRUSTED_FOR: Duration = Duration::from_secs(1);

/// Accounts remembered at most; past it the memory starts over (a cache, not a record).
const MAX_REMEMBERED_ACCOUNTS: usize = 100_000;

/// Which accounts have a webhook, as far as this process has read.
///
/// An account has one once its webhook marker ([`schema::webhooks_marker_key`]) or any webhook
/// item exists (items written before the marker existed have no marker). The marker is never
/// removed, so "has" is remembered for good; "has not" for [`NO_HOOKS_TRUSTED_FOR`], and every
/// write that relies on it checks the marker's absence in its own transaction.
#[derive(Debug, Default)]
pub struct HookPresence {
    seen: Mutex<HashMap<String, Option<Instant>>>,
}

impl HookPresence {
    /// Remembers that the account has a webhook (this process just created one).
    pub fn mark_present(&self, account_id: &str) {
        self.remember(account_id, None);
    }

    fn remember(&self, account_id: &str, absent_since: Option<Instant>) {
        if let Ok(mut seen) = self.seen.lock() {
            if seen.len() >= MAX_REMEMBERED_ACCOUNTS {
                seen.clear();
            }
            seen.insert(account_id.to_string(), absent_since);
        }
    }

    /// Whether the account may have a webhook: `false` only if it had none when read within
    /// [`NO_HOOKS_TRUSTED_FOR`].
    pub async fn may_have_hooks(&self, deps: &Deps, account_id: &str) -> Result<bool> {
        let known = self
            .seen
            .lock()
            .ok()
            .and_then(|seen| seen.get(account_id).copied());
        match known {
            Some(None) => return Ok(true),
            Some(Some(at)) if at.elapsed() < NO_HOOKS_TRUSTED_FOR => return Ok(false),
            _ => {}
        }
        let read_at = Instant::now();
        let marker = schema::webhooks_marker_key(account_id);
        let hooks = schema::webhooks_query(account_id, 1);
        let (marker, hooks) = tokio::try_join!(
            deps.store.get(Table::Leads, &marker),
            deps.store.query(&hooks)
        )?;
        let present = marker.is_some() || !hooks.items.is_empty();
        self.remember(account_id, (!present).then_some(read_at));
        Ok(present)
    }
}

/// The check a change makes instead of recording its event when the account has no webhook:
/// the webhook marker is still absent.
pub fn no_hooks_check(account_id: &str) -> WriteOp {
    WriteOp::Check {
        table: Table::Leads,
        key: schema::webhooks_marker_key(account_id),
        cond: Cond::NotExists,
    }
}

/// The outbox write that records `kind` with `data` for the tenant, in the same transaction
/// as the change it describes; `group` makes it a member record of that batch. For an account
/// without webhooks, the check that it still has none ([`no_hooks_check`]).
pub async fn event_op(
    deps: &Deps,
    account_id: &str,
    kind: EventKind,
    data: serde_json::Value,
    group: Option<&str>,
) -> Result<WriteOp> {
    event_op_with(deps, account_id, kind, || Ok(data), group).await
}

/// [`event_op`] with the event's data made only when the account has webhooks: a lead's
/// whole encoding, for instance, which an account without webhooks would make for nothing on
/// every create.
pub async fn event_op_with(
    deps: &Deps,
    account_id: &str,
    kind: EventKind,
    data: impl FnOnce() -> Result<serde_json::Value>,
    group: Option<&str>,
) -> Result<WriteOp> {
    if !deps.hooks.may_have_hooks(deps, account_id).await? {
        return Ok(no_hooks_check(account_id));
    }
    let data = data()?;
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
    let key = match group {
        None => schema::outbox_key(account_id, &id),
        Some(g) => schema::outbox_member_key(account_id, g, &id),
    };
    let mut item = Item::new(key, to_body(&ev)?);
    item.expires_at = Some(ev.timestamp + schema::OUTBOX_RETENTION_SECS);
    Ok(WriteOp::Put {
        table: Table::Outbox,
        item,
        cond: Cond::NotExists,
    })
}

/// The event write of a change in `mode`: the single kind, or a member of the grouped kind.
pub async fn mode_event_op(
    deps: &Deps,
    account_id: &str,
    mode: EventMode<'_>,
    single: EventKind,
    grouped: EventKind,
    data: impl FnOnce() -> Result<serde_json::Value>,
) -> Result<WriteOp> {
    match mode {
        EventMode::Single => event_op_with(deps, account_id, single, data, None).await,
        EventMode::Member(g) => event_op_with(deps, account_id, grouped, data, Some(g)).await,
    }
}

/// A fresh batch group id.
pub fn new_group(deps: &Deps) -> String {
    deps.ids.random().to_string()
}

/// The grouped payload of `kind` for its members' data: `{leads: [{id, score}], count}` for
/// `leads.scored`, `{ids, count}` for the batch events.
fn grouped_payload(kind: EventKind, members: Vec<serde_json::Value>) -> serde_json::Value {
    let count = members.len();
    if kind == EventKind::LeadsScored {
        serde_json::json!({ "leads": members, "count": count })
    } else {
        let ids: Vec<serde_json::Value> = members.into_iter().map(|d| d["id"].clone()).collect();
        serde_json::json!({ "ids": ids, "count": count })
    }
}

/// Folds the member records of `group` into grouped events, one per member kind (and per
/// [`MAX_GROUP_EVENT_LEADS`] members), deleting the members in the same transactions.
/// With `always`, an event of that kind is recorded even when the group has no member (a
/// rescoring run that changed nothing still reports `leads.scored` with `count: 0`).
///
/// Members are found by the group's key prefix, never by scanning recent events. Each
/// grouped event is written in one transaction with the deletion of its first 90 members (a
/// transaction holds at most 100 writes), the rest right after; a crash in between leaves
/// members that a later fold (the dispatcher's, for orphans) reports again: at least once.
pub async fn fold_group(
    deps: &Deps,
    account_id: &str,
    group: &str,
    always: Option<EventKind>,
) -> Result<()> {
    let mut emitted = false;
    loop {
        let page = deps
            .store
            .query(&QueryReq {
                table: Table::Outbox,
                index: None,
                pk: schema::outbox_key(account_id, "").pk,
                sk: SkCond::BeginsWith(schema::outbox_group_prefix(group)),
                start_after: None,
                descending: false,
                limit: MAX_GROUP_EVENT_LEADS as u32,
            })
            .await?;
        if page.items.is_empty() {
            break;
        }
        let mut by_kind: BTreeMap<EventKind, (Vec<serde_json::Value>, Vec<Key>)> = BTreeMap::new();
        for item in page.items {
            let ev: OutboxEvent = from_body(&item.body)?;
            let e = by_kind.entry(ev.event).or_default();
            e.0.push(ev.data);
            e.1.push(item.key);
        }
        for (kind, (members, keys)) in by_kind {
            write_grouped(deps, account_id, kind, members, &keys).await?;
            emitted = true;
        }
    }
    if let (false, Some(kind)) = (emitted, always) {
        write_grouped(deps, account_id, kind, Vec::new(), &[]).await?;
    }
    Ok(())
}

async fn write_grouped(
    deps: &Deps,
    account_id: &str,
    kind: EventKind,
    members: Vec<serde_json::Value>,
    keys: &[Key],
) -> Result<()> {
    let delete = |k: &Key| WriteOp::Delete {
        table: Table::Outbox,
        key: k.clone(),
        cond: Cond::Always,
    };
    let grouped = event_op(deps, account_id, kind, grouped_payload(kind, members), None).await?;
    let mut chunks = keys.chunks(90);
    let mut first = vec![grouped];
    if let Some(c) = chunks.next() {
        first.extend(c.iter().map(delete));
    }
    let mut groups = vec![first];
    groups.extend(chunks.map(|c| c.iter().map(delete).collect::<Vec<_>>()));
    // In order, the grouped event first; the embedded store commits them with one fsync.
    for r in deps.store.transact_many(groups).await {
        r?;
    }
    Ok(())
}
