//! Reading leads: one by id, and lists with filters, sorting and keyset cursors.

use crate::domain::account::Tenant;
use crate::domain::cursor::scope_of;
use crate::domain::filter::FilterSet;
use crate::domain::ids::LeadId;
use crate::domain::lead::Lead;
use crate::domain::query::{Sort, SortOrder, SortValue, select_page};
use crate::error::{Error, Result};
use crate::ports::{Item, Key, Position, QueryReq, SkCond, Store, Table};
use crate::schema;
use crate::services::plan::{self, Access, Plan, Strategy};
use crate::services::{Deps, from_body, to_body};

/// Default page size of `GET /leads`.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page size; larger requests are clamped.
pub const MAX_LIMIT: u32 = 1000;
/// Most items one key-ordered list request reads before it answers with an honest cursor.
pub const READ_BUDGET: u32 = 2000;
/// How many candidates a sort without an ordered index reads per store call; it streams the
/// whole candidate set through a top-`limit + 1` selection, so memory stays at about this many
/// leads plus the page, whatever the account size.
pub const CANDIDATE_CHUNK: u32 = 1000;

/// Reading and querying leads.
#[derive(Clone)]
pub struct LeadService {
    deps: Deps,
    read_budget: u32,
    candidate_chunk: u32,
}

/// How a list request was answered: the access path and what it read, for `explain=true`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PlanReport {
    /// `key_ordered` (the read order is the page order) or `candidates` (every candidate read,
    /// the page selected in memory).
    pub access: &'static str,
    /// The base table (`base`) or the index read.
    pub index: &'static str,
    /// Items the store read for this page.
    pub items_read: u64,
    /// Read units DynamoDB would charge for these reads: per store call, the bytes read rounded
    /// up to 4 KB, one unit each on the base table (strongly consistent), half on an index.
    pub estimated_rcu: f64,
}

impl PlanReport {
    /// Counts one store call that returned `items` (decoded as `leads`). DynamoDB stores each
    /// lead with its index key attributes, which the store does not hand back, so their size
    /// is added from the lead.
    fn count(&mut self, account_id: &str, items: &[Item], leads: &[Lead], on_index: bool) {
        self.items_read += items.len() as u64;
        let bytes: usize = items.iter().map(crate::ports::item_size).sum::<usize>()
            + leads
                .iter()
                .map(|l| schema::index_entries_size(account_id, l))
                .sum::<usize>();
        let units = bytes.div_ceil(4096).max(1) as f64;
        self.estimated_rcu += if on_index { units / 2.0 } else { units };
    }
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
    /// How the page was read.
    pub plan: PlanReport,
}

/// The stored item of `lead` at `version`, with its index entries when `store` writes them.
pub(crate) fn lead_item(
    store: &dyn Store,
    account_id: &str,
    lead: &Lead,
    version: u64,
) -> Result<Item> {
    let mut item = Item::new(schema::lead_key(account_id, &lead.id), to_body(lead)?);
    item.version = version;
    if store.writes_lead_index_keys() {
        item.index_keys = schema::lead_index_keys(account_id, lead);
    }
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
        LeadService {
            deps,
            read_budget: READ_BUDGET,
            candidate_chunk: CANDIDATE_CHUNK,
        }
    }

    /// The same service with other read bounds (tests lower them to cross them with few leads).
    pub fn with_bounds(mut self, read_budget: u32, candidate_chunk: u32) -> Self {
        self.read_budget = read_budget.max(1);
        self.candidate_chunk = candidate_chunk.max(1);
        self
    }

    /// Reads one lead of the tenant.
    pub async fn get(&self, t: &Tenant, id: &LeadId) -> Result<Lead> {
        Ok(load_lead(&self.deps, &t.account_id, id).await?.0)
    }

    /// Lists the tenant's leads matching the filters in the requested order, one page at a
    /// time. A key-ordered plan reads at most [`READ_BUDGET`] items per page; a candidates plan
    /// reads every candidate in chunks of [`CANDIDATE_CHUNK`] with bounded memory.
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
        self.query_range(t, plan, false, start_after, limit)
    }

    /// The query of the plan's first range, or with `tail` of its second ([`Plan::then`]).
    fn query_range(
        &self,
        t: &Tenant,
        plan: &Plan,
        tail: bool,
        start_after: Option<Position>,
        limit: u32,
    ) -> QueryReq {
        let (index, pk, sk) = match &plan.access {
            Access::Base => (
                None,
                schema::tenant_pk(&t.account_id),
                SkCond::BeginsWith(schema::LEAD_PREFIX.into()),
            ),
            Access::Index { index, pk, sk } => {
                let sk = match (&plan.then, tail) {
                    (Some(then), true) => then.clone(),
                    _ => sk.clone(),
                };
                (Some(*index), pk.clone(), sk)
            }
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
        // A position inside the second range (leads without the sort value) resumes there.
        let mut tail = plan.then.as_ref().is_some_and(|_| {
            start.as_ref().is_some_and(|p| {
                p.index
                    .as_ref()
                    .is_some_and(|(_, isk)| isk.starts_with(schema::MISSING_PREFIX))
            })
        });
        let mut report = PlanReport {
            access: "key_ordered",
            index: plan.access_name(),
            ..PlanReport::default()
        };
        let want = limit as usize + 1;
        let mut leads: Vec<Lead> = Vec::with_capacity(want);
        let mut budget = self.read_budget;
        // The position of the last item read, for a cursor when the budget runs out.
        let mut last_read: Option<Position> = None;
        let exhausted = loop {
            if budget == 0 {
                break false;
            }
            // Read what the page still needs; once filters have rejected items, scale that by
            // the observed selectivity (plus a quarter), so a selective filter takes few round
            // trips and an unselective one does not read past the page.
            let needed = (want - leads.len()) as u64;
            let chunk = if filters.is_empty() || report.items_read == 0 {
                needed
            } else {
                let ratio = (report.items_read + 1) as f64 / (leads.len() + 1) as f64;
                (needed as f64 * ratio * 1.25).ceil() as u64
            }
            .clamp(1, u64::from(budget)) as u32;
            let page = self
                .deps
                .store
                .query(&self.query_range(t, plan, tail, start.clone(), chunk))
                .await?;
            let read: Vec<Lead> = page
                .items
                .iter()
                .map(|item| from_body(&item.body))
                .collect::<Result<_>>()?;
            report.count(
                &t.account_id,
                &page.items,
                &read,
                plan.access != Access::Base,
            );
            // The budget counts items read: a range that ends short leaves the rest for the
            // next range, and a budget stop always follows a full chunk, so it has a position.
            budget -= page.items.len() as u32;
            for lead in read {
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
                Some(p) => {
                    last_read = Some(p.clone());
                    start = Some(p);
                }
                None if plan.then.is_some() && !tail => {
                    // The first range is done; the leads without the value follow.
                    tail = true;
                    let prev = start.take();
                    last_read = page
                        .items
                        .last()
                        .map(|item| position_of_item(item, plan))
                        .or(prev)
                        .or(last_read);
                }
                None => break true,
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
            // The read budget ran out before the page filled: resume after the last item read
            // (or, when nothing was read in the current range yet, where it begins).
            match start.or(last_read) {
                Some(pos) => {
                    let mut p = vec![pos.key.sk];
                    if let Some((ipk, isk)) = pos.index {
                        p.push(ipk);
                        p.push(isk);
                    }
                    Some(self.deps.cursor_key.encode(scope, &p))
                }
                // Nothing read at all (a budget smaller than one chunk cannot happen).
                None => None,
            }
        } else {
            None
        };
        Ok(ListPage {
            leads,
            next_cursor,
            plan: report,
        })
    }

    /// A sort with no ordered index: stream every candidate of the plan's access path and keep
    /// the first `limit + 1` after the cursor in sort order. Memory holds one chunk plus the
    /// page; the read is the whole candidate set, every page (its cost is in query-cost.md).
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
        let mut report = PlanReport {
            access: "candidates",
            index: plan.access_name(),
            ..PlanReport::default()
        };
        let keep = limit as usize + 1;
        // The best `keep` so far, in page order, refilled chunk by chunk.
        let mut best: Vec<Lead> = Vec::with_capacity(keep);
        let mut start = None;
        loop {
            let page = self
                .deps
                .store
                .query(&self.query_for(t, plan, start, self.candidate_chunk))
                .await?;
            let mut pool = std::mem::take(&mut best);
            let kept = pool.len();
            for item in &page.items {
                pool.push(from_body(&item.body)?);
            }
            report.count(
                &t.account_id,
                &page.items,
                &pool[kept..],
                plan.access != Access::Base,
            );
            let picked = select_page(
                &pool,
                &req.filters,
                sort,
                after.as_ref().map(|(v, id)| (v, id.as_str())),
                limit as usize,
            );
            let mut slots: Vec<Option<Lead>> = pool.into_iter().map(Some).collect();
            best = picked.into_iter().filter_map(|i| slots[i].take()).collect();
            match page.last {
                Some(p) => start = Some(p),
                None => break,
            }
        }
        let has_more = best.len() > limit as usize;
        let mut leads = best;
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
        Ok(ListPage {
            leads,
            next_cursor,
            plan: report,
        })
    }
}

/// The store position of a read item on the plan's access path.
fn position_of_item(item: &Item, plan: &Plan) -> Position {
    let index = match &plan.access {
        Access::Base => None,
        Access::Index { index, pk, .. } => item
            .index_keys
            .iter()
            .find(|k| k.index == *index)
            .map(|k| (pk.clone(), k.sk.clone())),
    };
    Position {
        key: item.key.clone(),
        index,
    }
}
