//! Leads use cases: create, read, update, delete and list.

use crate::domain::account::Tenant;
use crate::domain::cursor::scope_of;
use crate::domain::event::names;
use crate::domain::lead::{Lead, LeadChanges};
use crate::domain::query::{Sort, SortField, SortValue, compare};
use crate::error::{Error, Result};
use crate::ports::{Cond, Item, Key, Position, QueryReq, SkCond, StoreError, Table, WriteOp};
use crate::schema;
use crate::services::{Deps, from_body, to_body};

/// Default page size of `GET /leads`.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page size; larger requests are clamped.
pub const MAX_LIMIT: u32 = 1000;
/// Most items one list request may read from the store before it answers with a cursor.
pub const READ_BUDGET: u32 = 5000;
/// How often an update retries after losing an optimistic-concurrency race.
const UPDATE_ATTEMPTS: usize = 5;

/// The leads use cases.
#[derive(Clone)]
pub struct LeadService {
    deps: Deps,
}

/// The result of a create.
#[derive(Debug, Clone, PartialEq)]
pub struct Created {
    /// The stored lead.
    pub lead: Lead,
}

/// A list request after validation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListRequest {
    /// Page size, 1..=1000.
    pub limit: u32,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
    /// Sort.
    pub sort: Sort,
}

/// One page of leads.
#[derive(Debug, Clone, PartialEq)]
pub struct ListPage {
    /// The leads of this page, in order.
    pub leads: Vec<Lead>,
    /// Where the next page starts; `None` on the last page.
    pub next_cursor: Option<String>,
}

impl LeadService {
    /// Builds the service.
    pub fn new(deps: Deps) -> Self {
        LeadService { deps }
    }

    fn lead_item(&self, t: &Tenant, lead: &Lead, version: u64) -> Result<Item> {
        let mut item = Item::new(schema::lead_key(&t.account_id, &lead.id), to_body(lead)?);
        item.version = version;
        item.index_keys = schema::lead_index_keys(&t.account_id, lead);
        Ok(item)
    }

    fn new_attr_id(&self) -> impl FnMut() -> String + '_ {
        || self.deps.ids.random().to_string()
    }

    /// Creates a lead; the plan's lead limit is enforced atomically with the write.
    pub async fn create(&self, t: &Tenant, changes: &LeadChanges) -> Result<Created> {
        let now_ms = self.deps.clock.now_ms();
        let id = format!("cl_{}", self.deps.ids.time_ordered(now_ms));
        let lead = Lead::create(
            id,
            changes,
            now_ms.div_euclid(1000),
            &mut self.new_attr_id(),
        )?;
        let ops = vec![
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
            self.deps.outbox_put(
                &t.account_id,
                names::LEAD_CREATED,
                serde_json::to_value(&lead).map_err(Error::internal)?,
            )?,
        ];
        match self.deps.store.transact(ops).await {
            Ok(()) => Ok(Created { lead }),
            Err(StoreError::ConditionFailed(1)) => Err(limit_reached(t)),
            Err(e) => Err(e.into()),
        }
    }

    async fn load(&self, t: &Tenant, id: &str) -> Result<(Lead, u64)> {
        // Ids that cannot be lead ids are simply absent; no lookup needed.
        if !id.starts_with("cl_") || id.len() > 64 {
            return Err(Error::lead_not_found());
        }
        let item = self
            .deps
            .store
            .get(Table::Leads, &schema::lead_key(&t.account_id, id))
            .await?
            .ok_or_else(Error::lead_not_found)?;
        Ok((from_body(&item.body)?, item.version))
    }

    /// Reads one lead of the tenant.
    pub async fn get(&self, t: &Tenant, id: &str) -> Result<Lead> {
        Ok(self.load(t, id).await?.0)
    }

    /// Applies a partial update. `updated_at` moves only if a stored value changed;
    /// `last_interaction_at` moves on every update.
    pub async fn update(&self, t: &Tenant, id: &str, changes: &LeadChanges) -> Result<Lead> {
        for _ in 0..UPDATE_ATTEMPTS {
            let (mut lead, version) = self.load(t, id).await?;
            let changed = lead.apply(changes, &mut self.new_attr_id())?;
            let now = self.deps.clock.now_secs();
            lead.last_interaction_at = now;
            if changed {
                lead.updated_at = now;
            }
            let mut ops = vec![WriteOp::Put {
                table: Table::Leads,
                item: self.lead_item(t, &lead, version + 1)?,
                cond: Cond::Version(version),
            }];
            if changed {
                ops.push(self.deps.outbox_put(
                    &t.account_id,
                    names::LEAD_UPDATED,
                    serde_json::to_value(&lead).map_err(Error::internal)?,
                )?);
            }
            match self.deps.store.transact(ops).await {
                Ok(()) => return Ok(lead),
                Err(StoreError::ConditionFailed(0)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Conflict {
            code: "conflict",
            message: "the lead is being changed concurrently; please retry".into(),
        })
    }

    /// Deletes a lead and releases its slot in the plan's lead limit.
    pub async fn delete(&self, t: &Tenant, id: &str) -> Result<()> {
        for _ in 0..UPDATE_ATTEMPTS {
            let (lead, version) = self.load(t, id).await?;
            let ops = vec![
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
                self.deps.outbox_put(
                    &t.account_id,
                    names::LEAD_DELETED,
                    serde_json::to_value(&lead).map_err(Error::internal)?,
                )?,
            ];
            match self.deps.store.transact(ops).await {
                Ok(()) => return Ok(()),
                Err(StoreError::ConditionFailed(0)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::lead_not_found())
    }

    /// Lists the tenant's leads in the requested order, one page at a time.
    pub async fn list(&self, t: &Tenant, req: &ListRequest) -> Result<ListPage> {
        let limit = req.limit.clamp(1, MAX_LIMIT);
        let scope = scope_of(&[
            &req.sort.field.canonical(),
            match req.sort.order {
                crate::domain::query::SortOrder::Asc => "asc",
                crate::domain::query::SortOrder::Desc => "desc",
            },
        ]);
        let position = match &req.cursor {
            Some(c) if !c.is_empty() => Some(self.deps.cursor_key.decode(c, &scope)?),
            _ => None,
        };
        match req.sort.field {
            SortField::CreatedAt => {
                self.list_by_key(t, limit, &req.sort, &scope, position)
                    .await
            }
            _ => {
                self.list_in_memory(t, limit, &req.sort, &scope, position)
                    .await
            }
        }
    }

    /// Walks the tenant partition in key order; lead ids are time-ordered, so key order is
    /// `created_at` order with ties broken by id. Reads at most `limit + 1` items.
    async fn list_by_key(
        &self,
        t: &Tenant,
        limit: u32,
        sort: &Sort,
        scope: &str,
        position: Option<Vec<String>>,
    ) -> Result<ListPage> {
        let pk = schema::tenant_pk(&t.account_id);
        let start_after = match position.as_deref() {
            None => None,
            Some([sk]) if sk.starts_with(schema::LEAD_PREFIX) => Some(Position {
                key: Key::new(pk.clone(), sk.clone()),
                index: None,
            }),
            Some(_) => return Err(Error::invalid("cursor: not a cursor for this listing")),
        };
        let page = self
            .deps
            .store
            .query(&QueryReq {
                table: Table::Leads,
                index: None,
                pk,
                sk: SkCond::BeginsWith(schema::LEAD_PREFIX.into()),
                start_after,
                descending: sort.order == crate::domain::query::SortOrder::Desc,
                limit: limit + 1,
            })
            .await?;
        let mut leads = Vec::with_capacity(page.items.len());
        let mut keys = Vec::with_capacity(page.items.len());
        for item in page.items {
            leads.push(from_body::<Lead>(&item.body)?);
            keys.push(item.key.sk);
        }
        let next_cursor = if leads.len() > limit as usize {
            leads.truncate(limit as usize);
            Some(
                self.deps
                    .cursor_key
                    .encode(scope, &[keys[limit as usize - 1].clone()]),
            )
        } else {
            None
        };
        Ok(ListPage { leads, next_cursor })
    }

    /// Sorts on a field without a key order: reads the tenant's leads (bounded by
    /// [`READ_BUDGET`]) and orders them in memory. Tenants larger than the budget get a clear
    /// 400 instead of an unbounded request.
    async fn list_in_memory(
        &self,
        t: &Tenant,
        limit: u32,
        sort: &Sort,
        scope: &str,
        position: Option<Vec<String>>,
    ) -> Result<ListPage> {
        let after = match position.as_deref() {
            None => None,
            Some([v, id]) => Some((
                SortValue::decode(v).ok_or_else(|| Error::invalid("cursor: malformed"))?,
                id.clone(),
            )),
            Some(_) => return Err(Error::invalid("cursor: not a cursor for this listing")),
        };
        let all = self.read_all(t).await?;
        let mut rows: Vec<(SortValue, Lead)> = all
            .into_iter()
            .map(|l| (sort.field.value(&l), l))
            .filter(|(v, l)| match &after {
                None => true,
                Some((av, aid)) => {
                    compare((v, &l.id), (av, aid), sort.order) == std::cmp::Ordering::Greater
                }
            })
            .collect();
        let take = (limit as usize + 1).min(rows.len());
        if take < rows.len() {
            rows.select_nth_unstable_by(take, |a, b| {
                compare((&a.0, &a.1.id), (&b.0, &b.1.id), sort.order)
            });
            rows.truncate(take);
        }
        rows.sort_by(|a, b| compare((&a.0, &a.1.id), (&b.0, &b.1.id), sort.order));
        let next_cursor = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            let (v, l) = &rows[limit as usize - 1];
            Some(
                self.deps
                    .cursor_key
                    .encode(scope, &[v.encode(), l.id.clone()]),
            )
        } else {
            None
        };
        Ok(ListPage {
            leads: rows.into_iter().map(|(_, l)| l).collect(),
            next_cursor,
        })
    }

    async fn read_all(&self, t: &Tenant) -> Result<Vec<Lead>> {
        let pk = schema::tenant_pk(&t.account_id);
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .deps
                .store
                .query(&QueryReq {
                    table: Table::Leads,
                    index: None,
                    pk: pk.clone(),
                    sk: SkCond::BeginsWith(schema::LEAD_PREFIX.into()),
                    start_after: start,
                    descending: false,
                    limit: 1000,
                })
                .await?;
            for item in &page.items {
                out.push(from_body::<Lead>(&item.body)?);
            }
            if out.len() > READ_BUDGET as usize {
                return Err(Error::invalid(format!(
                    "sort_by: sorting on this field is limited to accounts with at most {READ_BUDGET} leads; sort by created_at instead"
                )));
            }
            match page.last {
                Some(p) => start = Some(p),
                None => return Ok(out),
            }
        }
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
