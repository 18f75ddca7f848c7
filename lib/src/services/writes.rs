//! The write side of the leads use cases: push with four-tier deduplication, update, delete,
//! and the batch forms of each. Every write carries its outbox event and keeps the lead's
//! marker items (uniqueness markers for e-mail and source_id, lookup items for phone and
//! name + city) in step, in one atomic transaction.

use std::collections::HashMap;

use crate::domain::account::Tenant;
use crate::domain::dedup::{
    MAX_PHONE_CANDIDATES, MatchInfo, PhoneCandidate, best_phone_match, fold, normalize_email,
    normalize_name, normalize_phone,
};
use crate::domain::event::names;
use crate::domain::lead::{Lead, LeadChanges, TextField};
use crate::error::{Error, Result};
use crate::ports::{Cond, Item, Key, QueryReq, SkCond, StoreError, Table, WriteOp};
use crate::schema;
use crate::services::enrich::score_of;
use crate::services::leads::LeadService;
use crate::services::{from_body, to_body};

/// How often a push or an update retries after losing a race to a concurrent write.
const WRITE_ATTEMPTS: u32 = 80;

/// Whether a write records a single event or a member of a batch's grouped event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventMode<'a> {
    /// `lead.created` / `lead.updated` / `lead.deleted`.
    Single,
    /// A member record of the batch with this group id.
    Member(&'a str),
}

/// What a push did.
#[derive(Debug, Clone, PartialEq)]
pub enum PushKind {
    /// A new lead; `hint` is set on a name + city match.
    Created {
        /// The similar lead, on a tier-4 match.
        potential_duplicate_id: Option<String>,
        /// Why it is similar.
        hint: Option<MatchInfo>,
    },
    /// Merged into an existing lead (tiers 1–3).
    Merged {
        /// Which tier matched.
        matched: MatchInfo,
    },
}

/// The outcome of a push.
#[derive(Debug, Clone, PartialEq)]
pub struct PushOutcome {
    /// The created or merged lead, as stored.
    pub lead: Lead,
    /// What happened.
    pub kind: PushKind,
}

enum Found {
    Merge(String, MatchInfo),
    New(Option<(String, MatchInfo)>),
}

/// A lead's marker items: unique ones (owned only if their body names the lead) and owned ones.
struct Markers {
    unique: Vec<Key>,
    owned: Vec<(Key, Vec<u8>)>,
}

fn text_of(c: &LeadChanges, f: TextField) -> Option<&str> {
    c.text
        .iter()
        .rev()
        .find(|(t, _)| *t == f)
        .and_then(|(_, v)| v.as_deref())
}

fn merge_changes(c: &LeadChanges) -> LeadChanges {
    // Last Touch Wins: only non-empty incoming values overwrite.
    LeadChanges {
        name: c.name.clone(),
        source: c.source.clone(),
        text: c
            .text
            .iter()
            .filter(|(_, v)| v.is_some())
            .cloned()
            .collect(),
        latitude: c.latitude.filter(Option::is_some),
        longitude: c.longitude.filter(Option::is_some),
        rating: c.rating.filter(Option::is_some),
        review_count: c.review_count.filter(Option::is_some),
        tags: c.tags.clone().filter(|t| !t.is_empty()),
        status: c.status,
        attributes: c.attributes.clone(),
        remove_attributes: Vec::new(),
    }
}

fn is_retryable(e: &Error) -> bool {
    matches!(
        e,
        Error::Conflict {
            code: "conflict",
            ..
        }
    )
}

impl LeadService {
    /// The outbox write for a change to `lead`: the single event, or a member record of the
    /// batch's grouped event.
    fn lead_event(
        &self,
        t: &Tenant,
        mode: EventMode<'_>,
        single: &str,
        grouped: &str,
        lead: &Lead,
    ) -> Result<WriteOp> {
        let data = serde_json::to_value(lead).map_err(Error::internal)?;
        Ok(match mode {
            EventMode::Single => self.deps.outbox_event(&t.account_id, single, data, None)?.1,
            EventMode::Member(g) => {
                self.deps
                    .outbox_event(&t.account_id, grouped, data, Some(g))?
                    .1
            }
        })
    }

    fn markers(&self, account_id: &str, lead: &Lead) -> Result<Markers> {
        let owner = to_body(&serde_json::json!({ "id": lead.id }))?;
        let mut m = Markers {
            unique: Vec::new(),
            owned: Vec::new(),
        };
        if let Some(e) = lead.email.as_deref().and_then(normalize_email) {
            m.unique.push(schema::email_marker_key(account_id, &e));
        }
        if let Some(s) = lead.source_id.as_deref().filter(|s| !s.is_empty()) {
            m.unique.push(schema::source_marker_key(account_id, s));
        }
        if let Some(p) = lead.phone.as_deref().and_then(normalize_phone) {
            m.owned.push((
                schema::phone_item_key(account_id, &p, &lead.id),
                to_body(&serde_json::json!({ "id": lead.id, "name": normalize_name(&lead.name) }))?,
            ));
        }
        if let Some(city) = lead.city.as_deref() {
            m.owned.push((
                schema::name_city_key(account_id, &fold(&lead.name), &fold(city), &lead.id),
                owner,
            ));
        }
        Ok(m)
    }

    /// The writes that move a lead's markers from `old` to `new` (either may be absent).
    ///
    /// A new lead claims its unique values unconditionally (`NotExists`), so a concurrent push
    /// that took one first makes the insert fail and the push is decided again as a merge. An
    /// update leaves a value that another lead already owns with that lead.
    async fn marker_ops(
        &self,
        account_id: &str,
        lead_id: &str,
        old: Option<&Lead>,
        new: Option<&Lead>,
    ) -> Result<Vec<WriteOp>> {
        let claim_all = old.is_none();
        let empty = || Markers {
            unique: Vec::new(),
            owned: Vec::new(),
        };
        let old = old
            .map(|l| self.markers(account_id, l))
            .transpose()?
            .unwrap_or_else(empty);
        let new = new
            .map(|l| self.markers(account_id, l))
            .transpose()?
            .unwrap_or_else(empty);
        let mut ops = Vec::new();
        for (k, _) in &old.owned {
            if !new.owned.iter().any(|(nk, _)| nk == k) {
                ops.push(WriteOp::Delete {
                    table: Table::Leads,
                    key: k.clone(),
                    cond: Cond::Always,
                });
            }
        }
        for (k, body) in &new.owned {
            if !old.owned.iter().any(|(ok, ob)| ok == k && ob == body) {
                ops.push(WriteOp::Put {
                    table: Table::Leads,
                    item: Item::new(k.clone(), body.clone()),
                    cond: Cond::Always,
                });
            }
        }
        let removed: Vec<Key> = old
            .unique
            .iter()
            .filter(|k| !new.unique.contains(k))
            .cloned()
            .collect();
        let added: Vec<Key> = new
            .unique
            .iter()
            .filter(|k| !old.unique.contains(k))
            .cloned()
            .collect();
        if removed.is_empty() && added.is_empty() {
            return Ok(ops);
        }
        let mut wanted = removed.clone();
        wanted.extend(added.iter().cloned());
        let current: HashMap<Key, Item> = self
            .deps
            .store
            .batch_get(Table::Leads, &wanted)
            .await?
            .into_iter()
            .map(|i| (i.key.clone(), i))
            .collect();
        let owner_of = |i: &Item| -> Option<String> {
            from_body::<serde_json::Value>(&i.body)
                .ok()
                .and_then(|v| v["id"].as_str().map(str::to_string))
        };
        for k in removed {
            if let Some(item) = current.get(&k)
                && owner_of(item).as_deref() == Some(lead_id)
            {
                ops.push(WriteOp::Delete {
                    table: Table::Leads,
                    key: k,
                    cond: Cond::Version(item.version),
                });
            }
        }
        for k in added {
            // A value already owned by another lead stays with that lead.
            if claim_all || !current.contains_key(&k) {
                ops.push(WriteOp::Put {
                    table: Table::Leads,
                    item: Item::new(k, to_body(&serde_json::json!({ "id": lead_id }))?),
                    cond: Cond::NotExists,
                });
            }
        }
        Ok(ops)
    }

    async fn find_duplicate(&self, t: &Tenant, c: &LeadChanges) -> Result<Found> {
        let acct = &t.account_id;
        let email = text_of(c, TextField::Email).and_then(normalize_email);
        let source_id = text_of(c, TextField::SourceId);
        let mut tiers: Vec<(Key, &'static str)> = Vec::new();
        if let Some(e) = &email {
            tiers.push((schema::email_marker_key(acct, e), "email"));
        }
        if let Some(s) = source_id {
            tiers.push((schema::source_marker_key(acct, s), "source_id"));
        }
        if !tiers.is_empty() {
            let keys: Vec<Key> = tiers.iter().map(|(k, _)| k.clone()).collect();
            let got = self.deps.store.batch_get(Table::Leads, &keys).await?;
            for (k, tier) in tiers {
                let tier: &'static str = tier;
                let k = &k;
                if let Some(item) = got.iter().find(|i| &i.key == k) {
                    let v: serde_json::Value = from_body(&item.body)?;
                    if let Some(id) = v["id"].as_str() {
                        return Ok(Found::Merge(
                            id.to_string(),
                            MatchInfo {
                                tier,
                                similarity: None,
                            },
                        ));
                    }
                }
            }
        }
        let name = c.name.as_deref().unwrap_or_default();
        if let Some(phone) = text_of(c, TextField::Phone).and_then(normalize_phone) {
            let page = self
                .deps
                .store
                .query(&QueryReq {
                    table: Table::Leads,
                    index: None,
                    pk: schema::tenant_pk(acct),
                    sk: SkCond::BeginsWith(schema::phone_prefix(&phone)),
                    start_after: None,
                    descending: false,
                    limit: MAX_PHONE_CANDIDATES,
                })
                .await?;
            let candidates: Vec<PhoneCandidate> = page
                .items
                .iter()
                .filter_map(|i| from_body::<serde_json::Value>(&i.body).ok())
                .map(|v| PhoneCandidate {
                    id: v["id"].as_str().unwrap_or_default().to_string(),
                    name: v["name"].as_str().unwrap_or_default().to_string(),
                })
                .collect();
            if let Some((i, sim)) = best_phone_match(&normalize_name(name), &candidates) {
                return Ok(Found::Merge(
                    candidates[i].id.clone(),
                    MatchInfo {
                        tier: "phone_name",
                        similarity: Some((sim * 100.0).round() / 100.0),
                    },
                ));
            }
        }
        if let Some(city) = text_of(c, TextField::City) {
            let page = self
                .deps
                .store
                .query(&QueryReq {
                    table: Table::Leads,
                    index: None,
                    pk: schema::tenant_pk(acct),
                    sk: SkCond::BeginsWith(schema::name_city_prefix(&fold(name), &fold(city))),
                    start_after: None,
                    descending: false,
                    limit: 1,
                })
                .await?;
            if let Some(item) = page.items.first() {
                let v: serde_json::Value = from_body(&item.body)?;
                if let Some(id) = v["id"].as_str() {
                    return Ok(Found::New(Some((
                        id.to_string(),
                        MatchInfo {
                            tier: "name_city",
                            similarity: None,
                        },
                    ))));
                }
            }
        }
        Ok(Found::New(None))
    }

    /// Full-jitter exponential backoff, so many writers contending for one lead spread out
    /// instead of colliding again in lockstep.
    async fn backoff(&self, attempt: u32) {
        let cap = (4u64 << attempt.min(6)).min(250);
        let ms = 1 + rand::random::<u64>() % cap;
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }

    /// Creates a lead, or merges it into the duplicate that deduplication finds (tiers: e-mail,
    /// source_id, phone + similar name; a name + city match creates with a hint). Race-safe:
    /// the uniqueness markers are written in the same transaction as the lead.
    pub async fn push(
        &self,
        t: &Tenant,
        changes: &LeadChanges,
        mode: EventMode<'_>,
    ) -> Result<PushOutcome> {
        for attempt in 0..WRITE_ATTEMPTS {
            match self.find_duplicate(t, changes).await? {
                Found::Merge(id, matched) => {
                    match self
                        .write_update(t, &id, &merge_changes(changes), mode)
                        .await
                    {
                        Ok(lead) => {
                            return Ok(PushOutcome {
                                lead,
                                kind: PushKind::Merged { matched },
                            });
                        }
                        // Deleted or changed under us: decide again.
                        Err(Error::NotFound(_)) => {}
                        Err(e) if is_retryable(&e) => {}
                        Err(e) => return Err(e),
                    }
                }
                Found::New(hint) => match self.insert(t, changes, mode).await {
                    Ok(lead) => {
                        let (potential_duplicate_id, hint) = match hint {
                            Some((id, m)) => (Some(id), Some(m)),
                            None => (None, None),
                        };
                        return Ok(PushOutcome {
                            lead,
                            kind: PushKind::Created {
                                potential_duplicate_id,
                                hint,
                            },
                        });
                    }
                    // A concurrent push took the e-mail or source_id: it is a duplicate now.
                    Err(e) if is_retryable(&e) => {}
                    Err(e) => return Err(e),
                },
            }
            self.backoff(attempt).await;
        }
        Err(Error::Conflict {
            code: "conflict",
            message: "too many concurrent pushes of the same lead; please retry".into(),
        })
    }

    /// Creates a lead or merges it into its duplicate: [`LeadService::push`] with single events.
    pub async fn create(&self, t: &Tenant, changes: &LeadChanges) -> Result<PushOutcome> {
        self.push(t, changes, EventMode::Single).await
    }

    async fn insert(&self, t: &Tenant, changes: &LeadChanges, mode: EventMode<'_>) -> Result<Lead> {
        let now_ms = self.deps.clock.now_ms();
        let id = format!("cl_{}", self.deps.ids.time_ordered(now_ms));
        let mut lead = Lead::create(
            id,
            changes,
            now_ms.div_euclid(1000),
            &mut self.new_attr_id(),
        )?;
        lead.score = score_of(&self.compiled_rules(t).await?, &lead);
        let mut ops = vec![
            WriteOp::Put {
                table: Table::Leads,
                item: self.lead_item(t, &lead, 1)?,
                cond: Cond::NotExists,
            },
            WriteOp::Add {
                table: Table::Accounts,
                key: schema::lead_counter_key(&t.account_id),
                delta: 1,
                max: t.limits.max_leads.map(|m| m as i64),
            },
            self.lead_event(t, mode, names::LEAD_CREATED, names::LEADS_CREATED, &lead)?,
        ];
        ops.extend(
            self.marker_ops(&t.account_id, &lead.id, None, Some(&lead))
                .await?,
        );
        match self.deps.store.transact(ops).await {
            Ok(()) => Ok(lead),
            Err(StoreError::ConditionFailed(1)) => Err(limit_reached(t)),
            Err(StoreError::ConditionFailed(_)) => Err(Error::Conflict {
                code: "conflict",
                message: "a concurrent push created the same lead".into(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Applies a partial update. `updated_at` moves only if a stored value changed;
    /// `last_interaction_at` moves on every update.
    pub async fn update(&self, t: &Tenant, id: &str, changes: &LeadChanges) -> Result<Lead> {
        self.update_with(t, id, changes, EventMode::Single).await
    }

    /// [`LeadService::update`] with an explicit event mode, retrying lost races.
    pub async fn update_with(
        &self,
        t: &Tenant,
        id: &str,
        changes: &LeadChanges,
        mode: EventMode<'_>,
    ) -> Result<Lead> {
        for attempt in 0..WRITE_ATTEMPTS {
            match self.write_update(t, id, changes, mode).await {
                Err(e) if is_retryable(&e) => self.backoff(attempt).await,
                other => return other,
            }
        }
        Err(Error::Conflict {
            code: "conflict",
            message: "the lead is being changed concurrently; please retry".into(),
        })
    }

    /// One attempt of an update; a lost race is a retryable `conflict`.
    async fn write_update(
        &self,
        t: &Tenant,
        id: &str,
        changes: &LeadChanges,
        mode: EventMode<'_>,
    ) -> Result<Lead> {
        let (mut lead, version) = self.load(t, id).await?;
        let old = lead.clone();
        let changed = lead.apply(changes, &mut self.new_attr_id())?;
        let now = self.deps.clock.now_secs();
        lead.last_interaction_at = now;
        if changed {
            lead.updated_at = now;
            // The score follows the values it is computed from, in the same write.
            lead.score = score_of(&self.compiled_rules(t).await?, &lead);
        }
        let mut ops = vec![WriteOp::Put {
            table: Table::Leads,
            item: self.lead_item(t, &lead, version + 1)?,
            cond: Cond::Version(version),
        }];
        if changed {
            ops.push(self.lead_event(t, mode, names::LEAD_UPDATED, names::LEADS_UPDATED, &lead)?);
            ops.extend(
                self.marker_ops(&t.account_id, &lead.id, Some(&old), Some(&lead))
                    .await?,
            );
        }
        match self.deps.store.transact(ops).await {
            Ok(()) => Ok(lead),
            Err(StoreError::ConditionFailed(_)) => Err(Error::Conflict {
                code: "conflict",
                message: "the lead changed concurrently".into(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes a lead, its markers, and releases its slot in the plan's lead limit.
    pub async fn delete(&self, t: &Tenant, id: &str) -> Result<()> {
        self.delete_with(t, id, EventMode::Single).await
    }

    /// [`LeadService::delete`] with an explicit event mode.
    pub async fn delete_with(&self, t: &Tenant, id: &str, mode: EventMode<'_>) -> Result<()> {
        for attempt in 0..WRITE_ATTEMPTS {
            let (lead, version) = self.load(t, id).await?;
            let mut ops = vec![
                WriteOp::Delete {
                    table: Table::Leads,
                    key: schema::lead_key(&t.account_id, id),
                    cond: Cond::Version(version),
                },
                WriteOp::Add {
                    table: Table::Accounts,
                    key: schema::lead_counter_key(&t.account_id),
                    delta: -1,
                    max: None,
                },
                self.lead_event(t, mode, names::LEAD_DELETED, names::LEADS_DELETED, &lead)?,
            ];
            ops.extend(
                self.marker_ops(&t.account_id, &lead.id, Some(&lead), None)
                    .await?,
            );
            match self.deps.store.transact(ops).await {
                Ok(()) => {
                    // Notes of a deleted lead are unreachable (every note route checks its
                    // lead), so removing them after the delete cannot expose anything.
                    let keys = self.note_cleanup(t, id).await?;
                    for chunk in keys.chunks(90) {
                        let ops = chunk
                            .iter()
                            .map(|k| WriteOp::Delete {
                                table: Table::Leads,
                                key: k.clone(),
                                cond: Cond::Always,
                            })
                            .collect();
                        self.deps.store.transact(ops).await?;
                    }
                    return Ok(());
                }
                Err(StoreError::ConditionFailed(_)) => self.backoff(attempt).await,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Conflict {
            code: "conflict",
            message: "the lead is being changed concurrently; please retry".into(),
        })
    }

    /// Folds a finished batch's member events into one grouped event `{ids, count}`.
    ///
    /// The member records were written atomically with each item, so nothing is lost if this
    /// step does not run; it only turns N notifications into one.
    pub async fn finish_group(
        &self,
        t: &Tenant,
        group: &str,
        event: &str,
        ids: &[String],
    ) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.finish_group_with(
            t,
            group,
            event,
            serde_json::json!({ "ids": ids, "count": ids.len() }),
        )
        .await
    }

    /// [`LeadService::finish_group`] with an explicit grouped payload.
    pub async fn finish_group_with(
        &self,
        t: &Tenant,
        group: &str,
        event: &str,
        data: serde_json::Value,
    ) -> Result<()> {
        let expected = data["count"].as_u64().unwrap_or(0) as u32;
        let page = self
            .deps
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
                from_body::<crate::domain::event::OutboxEvent>(&i.body)
                    .is_ok_and(|e| e.group.as_deref() == Some(group))
            })
            .map(|i| i.key.clone())
            .collect();
        let grouped = self.deps.outbox_event(&t.account_id, event, data, None)?;
        let mut first = vec![grouped.1];
        let mut chunks = members.chunks(90);
        if let Some(c) = chunks.next() {
            first.extend(c.iter().map(|k| WriteOp::Delete {
                table: Table::Outbox,
                key: k.clone(),
                cond: Cond::Always,
            }));
        }
        self.deps.store.transact(first).await?;
        for c in chunks {
            self.deps
                .store
                .transact(
                    c.iter()
                        .map(|k| WriteOp::Delete {
                            table: Table::Outbox,
                            key: k.clone(),
                            cond: Cond::Always,
                        })
                        .collect(),
                )
                .await?;
        }
        Ok(())
    }
}

fn limit_reached(t: &Tenant) -> Error {
    Error::LimitReached {
        code: "leads_limit_reached",
        message: format!(
            "Lead limit reached: the {} plan stores at most {} leads",
            t.plan,
            t.limits.max_leads.unwrap_or(0)
        ),
    }
}
