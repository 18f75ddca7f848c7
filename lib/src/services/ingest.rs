//! Ingestion: push with four-tier deduplication, update, delete, and the batch forms of each.
//! Every write carries its outbox event and keeps the lead's marker items (uniqueness markers
//! for e-mail and source_id, lookup items for phone and name + city) in step, in one atomic
//! transaction; a batch records one member event per item and folds them into one grouped
//! event when it finishes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::domain::account::Tenant;
use crate::domain::dedup::{
    MAX_PHONE_CANDIDATES, MatchInfo, PhoneCandidate, best_phone_match, fold, normalize_email,
    normalize_name, normalize_phone,
};
use crate::domain::event::EventKind;
use crate::domain::ids::LeadId;
use crate::domain::lead::{Lead, LeadChanges, TextField};
use crate::error::{Code, Error, Result};
use crate::ports::{Cond, Item, Key, QueryReq, SkCond, Store, Table, WriteOp};
use crate::schema;
use crate::services::analytics;
use crate::services::batch::BatchView;
use crate::services::events::{self, EventMode};
use crate::services::leads::{lead_item, load_lead};
use crate::services::notes::NoteService;
use crate::services::scoring::{ScoringService, score_of};
use crate::services::txn::{Check, Txn, TxnError};
use crate::services::{Deps, backoff, from_body, to_body};

/// How often a push or an update retries after losing a race to a concurrent write.
const WRITE_ATTEMPTS: u32 = 80;

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

/// One id of a batch update or delete, with what happened to it.
#[derive(Debug, Clone, PartialEq)]
pub struct IdOutcome {
    /// The id as the caller sent it.
    pub id: String,
    /// `Ok` when applied; the error says why not.
    pub result: Result<()>,
}

enum Found {
    Merge(LeadId, MatchInfo),
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
        add_tags: c.add_tags.clone(),
        status: c.status,
        attributes: c.attributes.clone(),
        remove_attributes: Vec::new(),
    }
}

fn limit_reached(t: &Tenant) -> Error {
    Error::LimitReached {
        code: Code::LeadsLimitReached,
        message: format!(
            "Lead limit reached: the {} plan stores at most {} leads",
            t.plan,
            t.limits.max_leads.unwrap_or(0)
        ),
    }
}

/// Refuses an empty batch or one over the plan's batch limit, before anything is written.
fn check_batch_size(t: &Tenant, n: usize, what: &str) -> Result<()> {
    if n == 0 {
        return Err(Error::invalid(format!(
            "{what}: at least one item is required"
        )));
    }
    if n > t.limits.max_batch as usize {
        return Err(Error::invalid(format!(
            "{what}: {n} items exceed the {} plan's batch limit of {}; nothing was written",
            t.plan, t.limits.max_batch
        )));
    }
    Ok(())
}

/// Whether a failure of one batch item means the store itself is failing, so a batch that has
/// not stored anything yet should fail whole (the caller retries it) rather than report it
/// item by item.
fn is_store_failure(e: &Error) -> bool {
    matches!(e, Error::Internal(_) | Error::Unavailable(_))
}

/// The tier-3 lookup: the phone items of one normalised phone.
fn phone_query(account_id: &str, phone: &str) -> QueryReq {
    QueryReq {
        table: Table::Leads,
        index: None,
        pk: schema::tenant_pk(account_id),
        sk: SkCond::BeginsWith(schema::phone_prefix(phone)),
        start_after: None,
        descending: false,
        limit: MAX_PHONE_CANDIDATES,
    }
}

/// The tier-4 lookup: the first lead with this name in this city.
fn name_city_query(account_id: &str, name: &str, city: &str) -> QueryReq {
    QueryReq {
        table: Table::Leads,
        index: None,
        pk: schema::tenant_pk(account_id),
        sk: SkCond::BeginsWith(schema::name_city_prefix(&fold(name), &fold(city))),
        start_after: None,
        descending: false,
        limit: 1,
    }
}

/// How a batch follows the batch before it ([`IngestService::batch_create_after`]).
pub struct Sequenced<A, B, C> {
    /// Resolves once the batch before has decided its items.
    pub earlier_decided: A,
    /// Resolves once the batch before has written.
    pub earlier_written: B,
    /// Called once this batch has decided its items.
    pub decided: C,
}

/// Creating, merging, updating and deleting leads, one at a time or in batches.
#[derive(Clone)]
pub struct IngestService {
    deps: Deps,
    scoring: ScoringService,
    notes: NoteService,
}

impl IngestService {
    /// Builds the service over the services it writes through.
    pub fn new(deps: Deps, scoring: ScoringService, notes: NoteService) -> Self {
        IngestService {
            deps,
            scoring,
            notes,
        }
    }

    fn new_attr_id(&self) -> impl FnMut() -> String + '_ {
        || self.deps.ids.random().to_string()
    }

    /// The outbox write for a change to `lead`.
    async fn lead_event(
        &self,
        t: &Tenant,
        mode: EventMode<'_>,
        single: EventKind,
        grouped: EventKind,
        lead: &Lead,
    ) -> Result<WriteOp> {
        let data = || match mode {
            EventMode::Single => serde_json::to_value(lead).map_err(Error::internal),
            // A batch's grouped event lists its members' ids only (`events::fold_group`), so a
            // member record keeps the id, not a third encoding of the whole lead.
            EventMode::Member(_) => Ok(serde_json::json!({ "id": lead.id })),
        };
        events::mode_event_op(&self.deps, &t.account_id, mode, single, grouped, data).await
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
        if let Some(city) = lead.city.as_deref()
            && !self.deps.store.finds_leads_by_name_city()
        {
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
        tx: &mut Txn,
    ) -> Result<()> {
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
        for (k, _) in &old.owned {
            if !new.owned.iter().any(|(nk, _)| nk == k) {
                tx.push(
                    Check::None,
                    WriteOp::Delete {
                        table: Table::Leads,
                        key: k.clone(),
                        cond: Cond::Always,
                    },
                );
            }
        }
        for (k, body) in &new.owned {
            if !old.owned.iter().any(|(ok, ob)| ok == k && ob == body) {
                tx.push(
                    Check::None,
                    WriteOp::Put {
                        table: Table::Leads,
                        item: Item::new(k.clone(), body.clone()),
                        cond: Cond::Always,
                    },
                );
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
            return Ok(());
        }
        if claim_all {
            // A new lead has nothing to release and claims every value unconditionally: the
            // current markers would change nothing, so they are not read.
            for k in added {
                tx.push(
                    Check::UniqueValue,
                    WriteOp::Put {
                        table: Table::Leads,
                        item: Item::new(k, to_body(&serde_json::json!({ "id": lead_id }))?),
                        cond: Cond::NotExists,
                    },
                );
            }
            return Ok(());
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
                tx.push(
                    Check::MarkerVersion,
                    WriteOp::Delete {
                        table: Table::Leads,
                        key: k,
                        cond: Cond::Version(item.version),
                    },
                );
            }
        }
        for k in added {
            // A value already owned by another lead stays with that lead.
            if claim_all || !current.contains_key(&k) {
                tx.push(
                    Check::UniqueValue,
                    WriteOp::Put {
                        table: Table::Leads,
                        item: Item::new(k, to_body(&serde_json::json!({ "id": lead_id }))?),
                        cond: Cond::NotExists,
                    },
                );
            }
        }
        Ok(())
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
                            LeadId::from_trusted(id),
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
            let page = self.deps.store.query(&phone_query(acct, &phone)).await?;
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
                    LeadId::from_trusted(candidates[i].id.clone()),
                    MatchInfo {
                        tier: "phone_name",
                        similarity: Some((sim * 100.0).round() / 100.0),
                    },
                ));
            }
        }
        if let Some(city) = text_of(c, TextField::City)
            && let Some(id) = self.first_by_name_city(acct, name, city).await?
        {
            return Ok(Found::New(Some((
                id,
                MatchInfo {
                    tier: "name_city",
                    similarity: None,
                },
            ))));
        }
        Ok(Found::New(None))
    }

    /// The tier-4 lookup: the first lead (smallest id) with this name in this city, from the
    /// store's own lead table when it has one, else from the `NC#` items.
    async fn first_by_name_city(
        &self,
        acct: &str,
        name: &str,
        city: &str,
    ) -> Result<Option<String>> {
        let store = &self.deps.store;
        if store.finds_leads_by_name_city() {
            let ids = store
                .leads_by_name_city(&schema::tenant_pk(acct), &fold(name), &fold(city), 1)
                .await?;
            return Ok(ids.into_iter().next());
        }
        let page = store.query(&name_city_query(acct, name, city)).await?;
        let Some(item) = page.items.first() else {
            return Ok(None);
        };
        let v: serde_json::Value = from_body(&item.body)?;
        Ok(v["id"].as_str().map(str::to_string))
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
                        Err(e) if e.is_retryable_conflict() => {}
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
                    Err(e) if e.is_retryable_conflict() => {}
                    Err(e) => return Err(e),
                },
            }
            backoff(attempt).await;
        }
        Err(Error::conflict(
            "too many concurrent pushes of the same lead; please retry",
        ))
    }

    /// What [`IngestService::push`] would do with `changes` now, without writing anything:
    /// the same deduplication decision (the dry run of an import), and the id of the lead a
    /// merge would go into.
    pub async fn decide(
        &self,
        t: &Tenant,
        changes: &LeadChanges,
    ) -> Result<(PushKind, Option<String>)> {
        Ok(match self.find_duplicate(t, changes).await? {
            Found::Merge(id, matched) => {
                (PushKind::Merged { matched }, Some(id.as_str().to_string()))
            }
            Found::New(hint) => {
                let (potential_duplicate_id, hint) = match hint {
                    Some((id, m)) => (Some(id), Some(m)),
                    None => (None, None),
                };
                let kind = PushKind::Created {
                    potential_duplicate_id,
                    hint,
                };
                (kind, None)
            }
        })
    }

    /// Creates a lead or merges it into its duplicate, recording a single event.
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
        lead.score = score_of(&self.scoring.compiled_rules(t).await?, &lead);
        let mut tx = Txn::new();
        tx.push(
            Check::LeadAbsent,
            WriteOp::Put {
                table: Table::Leads,
                item: lead_item(self.deps.store.as_ref(), &t.account_id, &lead, 1)?,
                cond: Cond::NotExists,
            },
        )
        .push(
            Check::LeadLimit,
            WriteOp::Add {
                table: Table::Accounts,
                key: schema::lead_counter_key(&t.account_id),
                delta: 1,
                max: t.limits.max_leads.map(|m| m as i64),
            },
        )
        .push(
            Check::EventAbsent,
            self.lead_event(
                t,
                mode,
                EventKind::LeadCreated,
                EventKind::LeadsCreated,
                &lead,
            )
            .await?,
        );
        self.marker_ops(&t.account_id, &lead.id, None, Some(&lead), &mut tx)
            .await?;
        tx.extend(
            Check::None,
            analytics::counter_ops(&t.account_id, None, Some(&lead)),
        );
        match tx.commit(&*self.deps.store).await {
            Ok(()) => Ok(lead),
            Err(TxnError::Failed(Check::LeadLimit)) => Err(limit_reached(t)),
            Err(e) => Err(e.into_error("a concurrent push created the same lead")),
        }
    }

    /// Applies a partial update. `updated_at` moves only if a stored value changed;
    /// `last_interaction_at` moves on every update.
    pub async fn update(&self, t: &Tenant, id: &LeadId, changes: &LeadChanges) -> Result<Lead> {
        self.update_with(t, id, changes, EventMode::Single).await
    }

    /// Adds one tag to a lead unless it already carries it (in any case): idempotent, and
    /// atomic with concurrent changes like every update.
    pub async fn add_tag(&self, t: &Tenant, id: &LeadId, tag: &str) -> Result<Lead> {
        let tags = LeadChanges::tags_value(&[tag.to_string()])?;
        if tags.is_empty() {
            return Err(Error::invalid("tag: must not be empty"));
        }
        let changes = LeadChanges {
            add_tags: tags,
            ..Default::default()
        };
        self.update(t, id, &changes).await
    }

    /// [`IngestService::update`] with an explicit event mode, retrying lost races.
    pub async fn update_with(
        &self,
        t: &Tenant,
        id: &LeadId,
        changes: &LeadChanges,
        mode: EventMode<'_>,
    ) -> Result<Lead> {
        for attempt in 0..WRITE_ATTEMPTS {
            match self.write_update(t, id, changes, mode).await {
                Err(e) if e.is_retryable_conflict() => backoff(attempt).await,
                other => return other,
            }
        }
        Err(Error::conflict(
            "the lead is being changed concurrently; please retry",
        ))
    }

    /// One attempt of an update; a lost race is a retryable `conflict`.
    async fn write_update(
        &self,
        t: &Tenant,
        id: &LeadId,
        changes: &LeadChanges,
        mode: EventMode<'_>,
    ) -> Result<Lead> {
        let (mut lead, version) = load_lead(&self.deps, &t.account_id, id).await?;
        let old = lead.clone();
        let changed = lead.apply(changes, &mut self.new_attr_id())?;
        let now = self.deps.clock.now_secs();
        lead.last_interaction_at = now;
        if changed {
            lead.updated_at = now;
            // The score follows the values it is computed from, in the same write.
            lead.score = score_of(&self.scoring.compiled_rules(t).await?, &lead);
        }
        let mut tx = Txn::new();
        tx.push(
            Check::LeadVersion,
            WriteOp::Put {
                table: Table::Leads,
                item: lead_item(self.deps.store.as_ref(), &t.account_id, &lead, version + 1)?,
                cond: Cond::Version(version),
            },
        );
        if changed {
            tx.push(
                Check::EventAbsent,
                self.lead_event(
                    t,
                    mode,
                    EventKind::LeadUpdated,
                    EventKind::LeadsUpdated,
                    &lead,
                )
                .await?,
            );
            // A single lead whose score moved also reports it on its own.
            if mode == EventMode::Single && (lead.score - old.score).abs() >= 1e-9 {
                tx.push(
                    Check::EventAbsent,
                    events::event_op(
                        &self.deps,
                        &t.account_id,
                        EventKind::LeadScored,
                        serde_json::json!({ "id": lead.id, "score": lead.score }),
                        None,
                    )
                    .await?,
                );
            }
            self.marker_ops(&t.account_id, &lead.id, Some(&old), Some(&lead), &mut tx)
                .await?;
            tx.extend(
                Check::None,
                analytics::counter_ops(&t.account_id, Some(&old), Some(&lead)),
            );
        }
        tx.commit(&*self.deps.store)
            .await
            .map_err(|e| e.into_error("the lead changed concurrently"))?;
        Ok(lead)
    }

    /// Deletes a lead, its markers and notes, and releases its slot in the plan's lead limit.
    pub async fn delete(&self, t: &Tenant, id: &LeadId) -> Result<()> {
        self.delete_with(t, id, EventMode::Single).await
    }

    /// [`IngestService::delete`] with an explicit event mode.
    pub async fn delete_with(&self, t: &Tenant, id: &LeadId, mode: EventMode<'_>) -> Result<()> {
        for attempt in 0..WRITE_ATTEMPTS {
            let (lead, version) = load_lead(&self.deps, &t.account_id, id).await?;
            let mut tx = Txn::new();
            tx.push(
                Check::LeadVersion,
                WriteOp::Delete {
                    table: Table::Leads,
                    key: schema::lead_key(&t.account_id, id),
                    cond: Cond::Version(version),
                },
            )
            .push(
                Check::None,
                WriteOp::Add {
                    table: Table::Accounts,
                    key: schema::lead_counter_key(&t.account_id),
                    delta: -1,
                    max: None,
                },
            )
            .push(
                Check::EventAbsent,
                self.lead_event(
                    t,
                    mode,
                    EventKind::LeadDeleted,
                    EventKind::LeadsDeleted,
                    &lead,
                )
                .await?,
            );
            self.marker_ops(&t.account_id, &lead.id, Some(&lead), None, &mut tx)
                .await?;
            tx.extend(
                Check::None,
                analytics::counter_ops(&t.account_id, Some(&lead), None),
            );
            match tx.commit(&*self.deps.store).await {
                Ok(()) => return self.notes.delete_all_of(t, id).await,
                Err(TxnError::Failed(_)) => backoff(attempt).await,
                Err(TxnError::Store(e)) => return Err(e),
            }
        }
        Err(Error::conflict(
            "the lead is being changed concurrently; please retry",
        ))
    }

    /// The same service reading and writing through a fresh [`BatchView`] of the store.
    fn on_view(&self) -> (Arc<BatchView>, IngestService) {
        let view = Arc::new(BatchView::new(self.deps.store.clone()));
        let store: Arc<dyn Store> = view.clone();
        let mut deps = self.deps.clone();
        deps.store = store.clone();
        let svc = IngestService {
            scoring: self.scoring.on_store(store),
            notes: NoteService::new(deps.clone()),
            deps,
        };
        (view, svc)
    }

    /// Commits what `view` holds in as few transactions as the store allows; answers the items
    /// (in order) that must run again on the store itself: those of a transaction that failed
    /// (a concurrent writer changed what the batch read, the plan's lead limit, a store
    /// failure) and of every one after it, and items the view could not pack.
    async fn commit_view<T>(&self, view: &BatchView, out: &[Result<T>]) -> Result<Vec<usize>> {
        let plan = view.plan()?;
        let (ops, items): (Vec<Vec<WriteOp>>, Vec<Vec<usize>>) = plan.chunks.into_iter().unzip();
        let results = self.deps.store.transact_many(ops).await;
        let committed = results.iter().take_while(|r| r.is_ok()).count();
        let done: HashSet<usize> = items[..committed].iter().flatten().copied().collect();
        let first = items[committed..]
            .iter()
            .flatten()
            .chain(&plan.replay)
            .copied()
            .min();
        Ok(match first {
            // Everything after the first item not stored runs again, except what is stored;
            // items that failed before it (invalid, over the limit) keep their answer.
            Some(first) => (first..out.len()).filter(|i| !done.contains(i)).collect(),
            None => Vec::new(),
        })
    }

    /// Pushes each item in order with deduplication (also against earlier items of the same
    /// batch). Items that failed validation at the edge come in as errors and are reported at
    /// their index. Records one `leads.created` and one `leads.updated` event for the batch.
    ///
    /// The items are decided one by one against a [`BatchView`], then committed together:
    /// the outcomes are those of pushing them one after another, in far fewer writes.
    pub async fn batch_create(
        &self,
        t: &Tenant,
        items: Vec<Result<LeadChanges>>,
    ) -> Result<Vec<Result<PushOutcome>>> {
        check_batch_size(t, items.len(), "leads")?;
        let order = Sequenced {
            earlier_decided: std::future::ready(()),
            earlier_written: std::future::ready(()),
            decided: || {},
        };
        self.batch_create_after(t, items, order).await
    }

    /// [`IngestService::batch_create`] in a sequence of batches, as an import runs its chunks:
    /// this batch decides its items once the batch before has decided (so ids and timestamps
    /// follow the rows), and writes once the batch before has written. The next chunk is thus
    /// decided while the previous one commits; what it read before that commit is checked by
    /// the conditions of its own transaction (a lead that changed meanwhile runs again on the
    /// store), so the result is the one the batches give one after the other. Ranges no
    /// condition guards (a phone, a name and city) are the caller's to keep apart.
    ///
    /// Unlike the API's batch, the number of items is not held to the plan's batch size: the
    /// caller bounds it (an import's chunk, [`crate::services::import::CHUNK`]).
    pub async fn batch_create_after<A, B, C>(
        &self,
        t: &Tenant,
        items: Vec<Result<LeadChanges>>,
        order: Sequenced<A, B, C>,
    ) -> Result<Vec<Result<PushOutcome>>>
    where
        A: std::future::Future<Output = ()> + Send,
        B: std::future::Future<Output = ()> + Send,
        C: FnOnce() + Send,
    {
        order.earlier_decided.await;
        let group = events::new_group(&self.deps);
        let mut decided = Some(order.decided);
        let mut earlier = std::pin::pin!(order.earlier_written);
        let viewed = self
            .batch_create_viewed(t, &items, &group, earlier.as_mut(), &mut decided)
            .await?;
        let out = match viewed {
            Some((mut outcomes, replay)) => {
                let mut any_ok = outcomes
                    .iter()
                    .enumerate()
                    .any(|(i, r)| r.is_ok() && !replay.contains(&i));
                for i in replay {
                    let r = match &items[i] {
                        Ok(c) => self.push(t, c, EventMode::Member(&group)).await,
                        Err(e) => Err(e.clone()),
                    };
                    if let Err(e) = &r
                        && is_store_failure(e)
                        && !any_ok
                    {
                        return Err(e.clone());
                    }
                    any_ok |= r.is_ok();
                    outcomes[i] = r;
                }
                outcomes
            }
            None => {
                earlier.await;
                let out = self.batch_create_one_by_one(t, items, &group).await?;
                if let Some(f) = decided.take() {
                    f();
                }
                out
            }
        };
        events::fold_group(&self.deps, &t.account_id, &group, None).await?;
        Ok(out)
    }

    /// The items of a batch decided on a view and committed together; `None` when a store
    /// failure while deciding means the batch should run item by item instead. Returns the
    /// outcomes and the items to run again (see [`IngestService::commit_view`]).
    #[allow(clippy::type_complexity)]
    async fn batch_create_viewed(
        &self,
        t: &Tenant,
        items: &[Result<LeadChanges>],
        group: &str,
        earlier: std::pin::Pin<&mut (impl std::future::Future<Output = ()> + Send)>,
        decided: &mut Option<impl FnOnce()>,
    ) -> Result<Option<(Vec<Result<PushOutcome>>, Vec<usize>)>> {
        let (view, svc) = self.on_view();
        let acct = &t.account_id;
        // The first lookups of every item, read ahead: one read for the unique markers and
        // the phone and name + city ranges a few at a time.
        let mut markers = Vec::new();
        let mut queries = Vec::new();
        for c in items.iter().flatten() {
            if let Some(e) = text_of(c, TextField::Email).and_then(normalize_email) {
                markers.push(schema::email_marker_key(acct, &e));
            }
            if let Some(s) = text_of(c, TextField::SourceId) {
                markers.push(schema::source_marker_key(acct, s));
            }
            if let Some(p) = text_of(c, TextField::Phone).and_then(normalize_phone) {
                queries.push(phone_query(acct, &p));
            }
            if let Some(city) = text_of(c, TextField::City)
                && !self.deps.store.finds_leads_by_name_city()
            {
                queries.push(name_city_query(
                    acct,
                    c.name.as_deref().unwrap_or_default(),
                    city,
                ));
            }
        }
        markers.sort();
        markers.dedup();
        if view.prefetch(Table::Leads, &markers).await.is_err()
            || view.prefetch_queries(queries).await.is_err()
        {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            view.set_item(i)?;
            let r = match item {
                Ok(c) => svc.push(t, c, EventMode::Member(group)).await,
                Err(e) => Err(e.clone()),
            };
            if let Err(e) = &r
                && is_store_failure(e)
            {
                return Ok(None);
            }
            out.push(r);
        }
        if let Some(f) = decided.take() {
            f();
        }
        earlier.await;
        let replay = self.commit_view(&view, &out).await?;
        Ok(Some((out, replay)))
    }

    /// [`IngestService::batch_create`] one push after another, as it ran before batches were
    /// committed together (the fallback when the store fails while a batch is decided).
    async fn batch_create_one_by_one(
        &self,
        t: &Tenant,
        items: Vec<Result<LeadChanges>>,
        group: &str,
    ) -> Result<Vec<Result<PushOutcome>>> {
        let mut out: Vec<Result<PushOutcome>> = Vec::with_capacity(items.len());
        for item in items {
            let r = match item {
                Ok(changes) => self.push(t, &changes, EventMode::Member(group)).await,
                Err(e) => Err(e),
            };
            if let Err(e) = &r
                && is_store_failure(e)
                && !out.iter().any(Result::is_ok)
            {
                return Err(e.clone());
            }
            out.push(r);
        }
        Ok(out)
    }

    /// Runs `op` on each id in order within one batch group, then folds the group's events.
    /// Like [`IngestService::batch_create`], the ids are first decided on a [`BatchView`]
    /// (`op` gets the service to run on), then committed together; what cannot be committed
    /// that way runs again on the store itself.
    async fn for_each_id<F, Fut>(
        &self,
        t: &Tenant,
        ids: Vec<String>,
        op: F,
    ) -> Result<Vec<IdOutcome>>
    where
        F: Fn(IngestService, LeadId, String) -> Fut,
        Fut: std::future::Future<Output = Result<()>>,
    {
        check_batch_size(t, ids.len(), "ids")?;
        let group = events::new_group(&self.deps);
        let (view, svc) = self.on_view();
        let keys: Vec<Key> = ids
            .iter()
            .filter_map(|id| LeadId::parse(id).ok())
            .map(|id| schema::lead_key(&t.account_id, &id))
            .collect();
        let mut viewed = view.prefetch(Table::Leads, &keys).await.is_ok();
        let mut results: Vec<Result<()>> = Vec::with_capacity(ids.len());
        if viewed {
            for (i, id) in ids.iter().enumerate() {
                view.set_item(i)?;
                let r = match LeadId::parse(id) {
                    Ok(lid) => op(svc.clone(), lid, group.clone()).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = &r
                    && is_store_failure(e)
                {
                    viewed = false;
                    break;
                }
                results.push(r);
            }
        }
        let replay: Vec<usize> = if viewed {
            self.commit_view(&view, &results).await?
        } else {
            results.clear();
            (0..ids.len()).collect()
        };
        results.resize_with(ids.len(), || Ok(()));
        for i in replay {
            results[i] = match LeadId::parse(&ids[i]) {
                Ok(lid) => op(self.clone(), lid, group.clone()).await,
                Err(e) => Err(e),
            };
        }
        events::fold_group(&self.deps, &t.account_id, &group, None).await?;
        Ok(ids
            .into_iter()
            .zip(results)
            .map(|(id, result)| IdOutcome { id, result })
            .collect())
    }

    /// Applies the same partial update to each id in order; one `leads.updated` event.
    pub async fn batch_update(
        &self,
        t: &Tenant,
        ids: Vec<String>,
        changes: &LeadChanges,
    ) -> Result<Vec<IdOutcome>> {
        self.for_each_id(t, ids, |svc, id, group| async move {
            svc.update_with(t, &id, changes, EventMode::Member(&group))
                .await
                .map(|_| ())
        })
        .await
    }

    /// Deletes each id in order; one `leads.deleted` event.
    pub async fn batch_delete(&self, t: &Tenant, ids: Vec<String>) -> Result<Vec<IdOutcome>> {
        self.for_each_id(t, ids, |svc, id, group| async move {
            svc.delete_with(t, &id, EventMode::Member(&group)).await
        })
        .await
    }
}
