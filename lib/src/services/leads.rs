//! Reading leads: one by id, and lists with filters, sorting and keyset cursors.

use crate::domain::account::Tenant;
use crate::domain::cursor::scope_of;
use crate::domain::filter::FilterSet;
use crate::domain::ids::LeadId;
use crate::domain::lead::Lead;
use crate::domain::query::{Sort, SortOrder, SortValue, select_page};
use crate::error::{Error, Result};
use crate::ports::{Item, Key, Position, QueryReq, SkCond, Table};
use crate::schema;
use crate::services::plan::{self, Access, Plan, Strategy};
use crate::services::{Deps, from_body, to_body};

/// Default page size of `GET /leads`.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page size; larger requests are clamped.
pub const MAX_LIMIT: u32 = 1000;
/// Most items one key-ordered list request reads before it answers with an honest cursor.
pub const READ_BUDGET: u32 = 2000;
/// Most candidate leads an in-memory sort may read; larger candidate sets get a 400 that says
/// how to narrow the request.
pub const CANDIDATE_BUDGET: u32 = 10_000;

/// Reading and querying leads.
#[derive(Clone)]
pub struct LeadService {
    deps: Deps,
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
    /// Filters.
    pub filters: FilterSet,
}

/// One page of leads.
#[derive(Debug, Clone, PartialEq)]
pub struct ListPage {
    /// The leads of this page, in order.
    pub leads: Vec<Lead>,
    /// Where the next page starts; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// The stored item of `lead` at `version`, with its index entries.
pub(crate) fn lead_item(account_id: &str, lead: &Lead, version: u64) -> Result<Item> {
    let mut item = Item::new(schema::lead_key(account_id, &lead.id), to_body(lead)?);
    item.version = version;
    item.index_keys = schema::lead_index_keys(account_id, lead);
    Ok(item)
}

/// Reads one lead of the tenant with its version.
pub(crate) async fn load_lead(deps: &Deps, account_id: &str, id: &LeadId) -> Result<(Lead, u64)> {
    let item = deps
        .store
        .get(Table::Leads, &schema::lead_key(account_id, id))
        .await?
        .ok_or_else(Error::lead_not_found)?;
    Ok((from_body(&item.body)?, item.version))
}

impl LeadService {
    /// Builds the service.
    pub fn new(deps: Deps) -> Self {
        LeadService { deps }
    }

    /// Reads one lead of the tenant.
    pub async fn get(&self, t: &Tenant, id: &LeadId) -> Result<Lead> {
        Ok(load_lead(&self.deps, &t.account_id, id).await?.0)
    }

    /// Lists the tenant's leads matching the filters in the requested order, one page at a
    /// time. Every request does bounded work: see [`READ_BUDGET`] and [`CANDIDATE_BUDGET`].
    pub async fn list(&self, t: &Tenant, req: &ListRequest) -> Result<ListPage> {
        let limit = req.limit.clamp(1, MAX_LIMIT);
        let order = match req.sort.order {
            SortOrder::Asc => "asc",
            SortOrder::Desc => "desc",
        };
        let field = req.sort.field.canonical();
        let mut parts: Vec<&str> = vec![&field, order];
        parts.extend(req.filters.raw.iter().map(String::as_str));
        let scope = scope_of(&parts);
        let position = match &req.cursor {
            Some(c) if !c.is_empty() => Some(self.deps.cursor_key.decode(c, &scope)?),
            _ => None,
        };
        if let Some(index) = self.deps.store.lead_index() {
            return crate::services::leads_indexed::list(
                &self.deps,
                index,
                &t.account_id,
                &req.filters,
                &req.sort,
                limit,
                &scope,
                position,
            )
            .await;
        }
        let plan = plan::plan(&t.account_id, &req.filters, &req.sort);
        match plan.strategy {
            Strategy::KeyOrdered => {
                self.list_key_ordered(t, limit, &plan, &req.filters, &scope, position)
                    .await
            }
            Strategy::Candidates => {
                self.list_candidates(t, limit, &plan, req, &scope, position)
                    .await
            }
        }
    }

    fn query_for(
        &self,
        t: &Tenant,
        plan: &Plan,
        start_after: Option<Position>,
        limit: u32,
    ) -> QueryReq {
        let (index, pk, sk) = match &plan.access {
            Access::Base => (
                None,
                schema::tenant_pk(&t.account_id),
                SkCond::BeginsWith(schema::LEAD_PREFIX.into()),
            ),
            Access::Index { index, pk, sk } => (Some(*index), pk.clone(), sk.clone()),
        };
        QueryReq {
            table: Table::Leads,
            index,
            pk,
            sk,
            start_after,
            descending: plan.descending,
            limit,
        }
    }

    /// The exact resume position of a lead on the plan's access path.
    fn position_of(&self, t: &Tenant, plan: &Plan, lead: &Lead) -> Vec<String> {
        let key = schema::lead_key(&t.account_id, &lead.id);
        match &plan.access {
            Access::Base => vec![key.sk],
            Access::Index { index, pk, .. } => {
                let isk = schema::lead_index_keys(&t.account_id, lead)
                    .into_iter()
                    .find(|k| k.index == *index)
                    .map(|k| k.sk)
                    .unwrap_or_default();
                vec![key.sk, pk.clone(), isk]
            }
        }
    }

    fn position_from(&self, t: &Tenant, p: &[String]) -> Result<Position> {
        let bad = || Error::invalid("cursor: not a cursor for this listing");
        let pk = schema::tenant_pk(&t.account_id);
        match p {
            [sk] if sk.starts_with(schema::LEAD_PREFIX) => Ok(Position {
                key: Key::new(pk, sk.clone()),
                index: None,
            }),
            [sk, ipk, isk] if sk.starts_with(schema::LEAD_PREFIX) => Ok(Position {
                key: Key::new(pk, sk.clone()),
                index: Some((ipk.clone(), isk.clone())),
            }),
            _ => Err(bad()),
        }
    }

    async fn list_key_ordered(
        &self,
        t: &Tenant,
        limit: u32,
        plan: &Plan,
        filters: &FilterSet,
        scope: &str,
        position: Option<Vec<String>>,
    ) -> Result<ListPage> {
        let mut start = position.map(|p| self.position_from(t, &p)).transpose()?;
        let want = limit as usize + 1;
        let mut leads: Vec<Lead> = Vec::with_capacity(want);
        let mut budget = READ_BUDGET;
        let exhausted = loop {
            // Without filters every read item is a match, so read exactly what the page needs.
            let chunk = if filters.is_empty() {
                (want - leads.len()) as u32
            } else {
                ((want - leads.len()) as u32 * 2).max(100)
            }
            .min(budget);
            let page = self
                .deps
                .store
                .query(&self.query_for(t, plan, start.clone(), chunk))
                .await?;
            budget -= chunk;
            for item in page.items {
                let lead: Lead = from_body(&item.body)?;
                if filters.matches(&lead) {
                    leads.push(lead);
                    if leads.len() == want {
                        break;
                    }
                }
            }
            if leads.len() == want {
                break false;
            }
            match page.last {
                None => break true,
                Some(p) if budget == 0 => {
                    start = Some(p);
                    break false;
                }
                Some(p) => start = Some(p),
            }
        };
        let next_cursor = if leads.len() == want {
            leads.truncate(limit as usize);
            let last = &leads[limit as usize - 1];
            Some(
                self.deps
                    .cursor_key
                    .encode(scope, &self.position_of(t, plan, last)),
            )
        } else if !exhausted {
            // The read budget ran out before the page filled: resume after the last item read.
            let pos = start.expect("a budget stop always has a position");
            let mut p = vec![pos.key.sk];
            if let Some((ipk, isk)) = pos.index {
                p.push(ipk);
                p.push(isk);
            }
            Some(self.deps.cursor_key.encode(scope, &p))
        } else {
            None
        };
        Ok(ListPage { leads, next_cursor })
    }

    async fn list_candidates(
        &self,
        t: &Tenant,
        limit: u32,
        plan: &Plan,
        req: &ListRequest,
        scope: &str,
        position: Option<Vec<String>>,
    ) -> Result<ListPage> {
        let sort = &req.sort;
        let after = match position.as_deref() {
            None => None,
            Some([v, id]) => Some((
                SortValue::decode(v).ok_or_else(|| Error::invalid("cursor: malformed"))?,
                id.clone(),
            )),
            Some(_) => return Err(Error::invalid("cursor: not a cursor for this listing")),
        };
        let mut candidates: Vec<Lead> = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .deps
                .store
                .query(&self.query_for(t, plan, start, 1000))
                .await?;
            if candidates.len() + page.items.len() > CANDIDATE_BUDGET as usize {
                return Err(Error::invalid(format!(
                    "sort_by: sorting by {} is limited to {CANDIDATE_BUDGET} candidate leads; \
                     narrow the request with an equality filter on status, source or city, a \
                     rating or score range, or sort by created_at, score or last_interaction_at",
                    sort.field.canonical()
                )));
            }
            for item in page.items {
                candidates.push(from_body(&item.body)?);
            }
            match page.last {
                Some(p) => start = Some(p),
                None => break,
            }
        }
        let picked = select_page(
            &candidates,
            &req.filters,
            sort,
            after.as_ref().map(|(v, id)| (v, id.as_str())),
            limit as usize,
        );
        let has_more = picked.len() > limit as usize;
        let mut slots: Vec<Option<Lead>> = candidates.into_iter().map(Some).collect();
        let mut leads: Vec<Lead> = picked.into_iter().filter_map(|i| slots[i].take()).collect();
        let next_cursor = if has_more {
            leads.truncate(limit as usize);
            let last = &leads[limit as usize - 1];
            let v = sort.field.value(last);
            Some(
                self.deps
                    .cursor_key
                    .encode(scope, &[v.encode(), last.id.clone()]),
            )
        } else {
            None
        };
        Ok(ListPage { leads, next_cursor })
    }
}
