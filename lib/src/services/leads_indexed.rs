//! Listing leads through a store's own lead index ([`crate::ports::LeadIndex`]), when the store
//! has one (the embedded store). The store hands back candidates in list order, a superset of
//! the matches; the one Rust filter evaluator decides each. Every sort field works at any
//! account size, and the cursor is the (sort value, id) of the last lead, signed like every
//! other cursor.

use crate::domain::filter::FilterSet;
use crate::domain::lead::Lead;
use crate::domain::query::{Sort, SortValue};
use crate::error::{Error, Result};
use crate::ports::{LeadIndex, LeadScan};
use crate::schema;
use crate::services::leads::{ListPage, PlanReport};
use crate::services::{Deps, from_body};

/// Most candidate leads one request reads before it answers with the matches so far and a
/// cursor after the last lead read (so a rare post-filter cannot make a request unbounded).
pub const SCAN_BUDGET: u32 = 20_000;

/// One page of the tenant's leads matching `filters` in `sort` order, after the cursor
/// `position` (already checked against the request's scope).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn list(
    deps: &Deps,
    index: &dyn LeadIndex,
    account_id: &str,
    filters: &FilterSet,
    sort: &Sort,
    limit: u32,
    scope: &str,
    position: Option<Vec<String>>,
) -> Result<ListPage> {
    let mut after: Option<(SortValue, String)> = match position.as_deref() {
        None => None,
        Some([v, id]) => Some((
            SortValue::decode(v).ok_or_else(|| Error::invalid("cursor: malformed"))?,
            id.clone(),
        )),
        Some(_) => return Err(Error::invalid("cursor: not a cursor for this listing")),
    };
    let partition = schema::tenant_pk(account_id);
    let want = limit as usize + 1;
    let mut leads: Vec<Lead> = Vec::with_capacity(want);
    let mut budget = SCAN_BUDGET;
    let mut items_read = 0u64;
    let mut rounds = 0u32;
    let stopped_early = loop {
        let missing = (want - leads.len()) as u32;
        // The first read asks for exactly what the page still needs: the SQL part of the
        // common filters (equality, ranges, tags, `contains`) is what the evaluator decides, so
        // its candidates are nearly all matches, and every candidate read costs a JSON decode.
        // When the evaluator does reject candidates (a filter SQL cannot express), later reads
        // grow so a sparse match still takes few round trips.
        let chunk = if filters.is_empty() || rounds == 0 {
            missing
        } else {
            missing.saturating_mul(4 << rounds.min(4)).max(200)
        }
        .min(budget);
        rounds += 1;
        let bodies = index
            .scan_leads(LeadScan {
                partition: &partition,
                filters,
                sort,
                after: after.as_ref().map(|(v, id)| (v, id.as_str())),
                limit: chunk,
            })
            .await?;
        let read = bodies.len() as u32;
        budget -= read;
        items_read += u64::from(read);
        for body in bodies {
            let lead: Lead = from_body(&body)?;
            after = Some((sort.field.value(&lead), lead.id.clone()));
            if filters.matches(&lead) {
                leads.push(lead);
                if leads.len() == want {
                    break;
                }
            }
        }
        if leads.len() == want || read < chunk {
            break false;
        }
        if budget == 0 {
            break true;
        }
    };
    let next_cursor = if leads.len() == want {
        leads.truncate(limit as usize);
        let last = &leads[limit as usize - 1];
        Some(
            deps.cursor_key
                .encode(scope, &[sort.field.value(last).encode(), last.id.clone()]),
        )
    } else if stopped_early {
        // The budget ran out before the page filled: resume after the last lead read.
        let (v, id) = after.expect("a budget stop has read at least one lead");
        Some(deps.cursor_key.encode(scope, &[v.encode(), id]))
    } else {
        None
    };
    // The embedded store reads its typed lead table in list order (an SQLite index); it has no
    // read units to report.
    let plan = PlanReport {
        access: "key_ordered",
        index: "lead_rows",
        items_read,
        estimated_rcu: 0.0,
    };
    Ok(ListPage {
        leads,
        next_cursor,
        plan,
    })
}
