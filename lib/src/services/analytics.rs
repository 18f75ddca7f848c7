//! Account analytics (`/stats`, `/categories`, `/cities`) answered from counters, never from a
//! scan of the leads.
//!
//! Every write that creates, changes or deletes a lead adds [`counter_ops`] to its own
//! transaction: the difference between what the lead contributed before and after, one `Add`
//! per counter key (DynamoDB allows one operation per item in a transaction). The counters live
//! in one partition of the accounts table per account (`STAT#<account>`), so an answer is one
//! or two key-range reads whose size depends on the number of distinct sources, categories and
//! cities and on the days in the window, never on the number of leads.
//!
//! Counter sort keys:
//! - `s#status#<status>`, `s#source#<source as written>`, `s#email`, `s#phone`,
//!   `s#score#high|medium|low`, `s#score#sum` (the sum of scores in thousandths);
//! - `d#<days since 1970-01-01, 6 digits>`: leads created that day (UTC);
//! - `c#<category as written>`, `t#<city as written>`.
//!
//! Sources, categories and cities are counted per spelling and grouped case-insensitively
//! when read (the list filters compare them the same way), shown in the spelling most leads
//! use.

use std::collections::{BTreeMap, HashMap};

use crate::domain::account::Tenant;
use crate::domain::lead::{Lead, Status};
use crate::error::Result;
use crate::ports::{Key, QueryReq, SkCond, Table, WriteOp};
use crate::services::Deps;

/// Scores at or above this are `high`.
pub const HIGH_SCORE: f64 = 70.0;
/// Scores at or above this (and below [`HIGH_SCORE`]) are `medium`; below it, `low`.
pub const MEDIUM_SCORE: f64 = 40.0;
/// Score sums are kept in thousandths (counters are integers).
const SCORE_SCALE: f64 = 1000.0;
/// Longest name kept verbatim in a counter key (DynamoDB sort keys hold 1 KB).
const MAX_NAME_BYTES: usize = 800;

/// The partition of an account's analytics counters (accounts table).
pub fn stats_pk(account_id: &str) -> String {
    format!("STAT#{account_id}")
}

fn day_sk(day: i64) -> String {
    format!("d#{:06}", day.max(0))
}

fn name_part(name: &str) -> String {
    if name.len() <= MAX_NAME_BYTES {
        return name.to_string();
    }
    let mut end = MAX_NAME_BYTES;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_string()
}

fn present(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// What one lead adds to each counter.
fn contributions(lead: &Lead, out: &mut HashMap<String, i64>, sign: i64) {
    let mut add = |k: String, n: i64| *out.entry(k).or_insert(0) += sign * n;
    add(format!("s#status#{}", lead.status.as_str()), 1);
    add(format!("s#source#{}", name_part(&lead.source)), 1);
    if present(&lead.email).is_some() {
        add("s#email".into(), 1);
    }
    if present(&lead.phone).is_some() {
        add("s#phone".into(), 1);
    }
    let bucket = if lead.score >= HIGH_SCORE {
        "high"
    } else if lead.score >= MEDIUM_SCORE {
        "medium"
    } else {
        "low"
    };
    add(format!("s#score#{bucket}"), 1);
    add(
        "s#score#sum".into(),
        (lead.score * SCORE_SCALE).round() as i64,
    );
    add(day_sk(lead.created_at.div_euclid(86_400)), 1);
    if let Some(c) = present(&lead.category) {
        add(format!("c#{}", name_part(c)), 1);
    }
    if let Some(c) = present(&lead.city) {
        add(format!("t#{}", name_part(c)), 1);
    }
}

/// The counter writes that move an account's analytics from `old` to `new` (a create has no
/// `old`, a delete no `new`): one `Add` per counter whose value changes.
pub fn counter_ops(account_id: &str, old: Option<&Lead>, new: Option<&Lead>) -> Vec<WriteOp> {
    let mut deltas = HashMap::new();
    if let Some(l) = old {
        contributions(l, &mut deltas, -1);
    }
    if let Some(l) = new {
        contributions(l, &mut deltas, 1);
    }
    let pk = stats_pk(account_id);
    let mut keys: Vec<(String, i64)> = deltas.into_iter().filter(|(_, d)| *d != 0).collect();
    keys.sort();
    keys.into_iter()
        .map(|(sk, delta)| WriteOp::Add {
            table: Table::Accounts,
            key: Key::new(pk.clone(), sk),
            delta,
            max: None,
        })
        .collect()
}

/// Score figures of [`Stats`].
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreStats {
    /// Mean score, to two decimals (0 without leads).
    pub average: f64,
    /// Leads scoring 70 or more.
    pub high: u64,
    /// Leads scoring 40 or more and below 70.
    pub medium: u64,
    /// Leads scoring below 40.
    pub low: u64,
}

/// The answer of `GET /stats`.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    /// Leads stored.
    pub total: u64,
    /// Leads per status (every status, zeros included), in pipeline order.
    pub by_status: Vec<(Status, u64)>,
    /// Leads per source (case-insensitive, in the spelling most leads use).
    pub by_source: Vec<NameCount>,
    /// Score figures.
    pub score: ScoreStats,
    /// Leads created since 00:00 UTC six days ago (today and the six days before).
    pub created_last_7_days: u64,
    /// Leads created since 00:00 UTC twenty-nine days ago.
    pub created_last_30_days: u64,
    /// Leads with an e-mail.
    pub with_email: u64,
    /// Leads with a phone number.
    pub with_phone: u64,
}

/// A distinct name (category, city, source) and how many leads have it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameCount {
    /// The spelling most leads use.
    pub name: String,
    /// Leads with the name, in any spelling.
    pub count: u64,
}

/// Groups per-spelling counts case-insensitively; sorted by count (most first), then name.
fn group_names(spellings: impl IntoIterator<Item = (String, i64)>) -> Vec<NameCount> {
    let mut groups: BTreeMap<String, (u64, String, i64)> = BTreeMap::new();
    for (name, n) in spellings {
        if n <= 0 {
            continue;
        }
        let g = groups
            .entry(name.to_lowercase())
            .or_insert((0, String::new(), 0));
        g.0 += n as u64;
        // Most written wins; equal counts keep the smallest spelling, so answers are stable.
        if n > g.2 || (n == g.2 && name < g.1) {
            g.1 = name;
            g.2 = n;
        }
    }
    let mut out: Vec<NameCount> = groups
        .into_values()
        .map(|(count, name, _)| NameCount { name, count })
        .collect();
    out.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.name.to_lowercase().cmp(&b.name.to_lowercase()))
            .then_with(|| a.name.cmp(&b.name))
    });
    out
}

/// The analytics use cases.
#[derive(Clone)]
pub struct AnalyticsService {
    deps: Deps,
}

impl AnalyticsService {
    /// Builds the service.
    pub fn new(deps: Deps) -> Self {
        AnalyticsService { deps }
    }

    async fn counters(&self, account_id: &str, sk: SkCond) -> Result<Vec<(String, i64)>> {
        let items = self
            .deps
            .query_all(QueryReq {
                table: Table::Accounts,
                index: None,
                pk: stats_pk(account_id),
                sk,
                start_after: None,
                descending: false,
                limit: 1000,
            })
            .await?;
        Ok(items.into_iter().map(|i| (i.key.sk, i.counter)).collect())
    }

    /// The account's statistics.
    pub async fn stats(&self, t: &Tenant) -> Result<Stats> {
        let today = self.deps.clock.now_secs().div_euclid(86_400);
        let (general, days) = futures_util::future::try_join(
            self.counters(&t.account_id, SkCond::BeginsWith("s#".into())),
            self.counters(
                &t.account_id,
                SkCond::Between(day_sk(today - 29), day_sk(today + 1)),
            ),
        )
        .await?;
        let get = |k: &str| {
            general
                .iter()
                .find(|(sk, _)| sk == k)
                .map_or(0, |(_, n)| (*n).max(0))
        };
        let by_status: Vec<(Status, u64)> = Status::ALL
            .iter()
            .map(|s| (*s, get(&format!("s#status#{}", s.as_str())) as u64))
            .collect();
        let total: u64 = by_status.iter().map(|(_, n)| n).sum();
        let by_source = group_names(general.iter().filter_map(|(sk, n)| {
            sk.strip_prefix("s#source#")
                .map(|name| (name.to_string(), *n))
        }));
        let average = if total == 0 {
            0.0
        } else {
            let mean = get("s#score#sum") as f64 / SCORE_SCALE / total as f64;
            (mean * 100.0).round() / 100.0
        };
        let since = |first: i64| -> u64 {
            let from = day_sk(first);
            days.iter()
                .filter(|(sk, _)| *sk >= from)
                .map(|(_, n)| (*n).max(0) as u64)
                .sum()
        };
        Ok(Stats {
            total,
            by_status,
            by_source,
            score: ScoreStats {
                average,
                high: get("s#score#high") as u64,
                medium: get("s#score#medium") as u64,
                low: get("s#score#low") as u64,
            },
            created_last_7_days: since(today - 6),
            created_last_30_days: since(today - 29),
            with_email: get("s#email") as u64,
            with_phone: get("s#phone") as u64,
        })
    }

    /// The account's distinct categories with their lead counts.
    pub async fn categories(&self, t: &Tenant) -> Result<Vec<NameCount>> {
        self.names(t, "c#").await
    }

    /// The account's distinct cities with their lead counts.
    pub async fn cities(&self, t: &Tenant) -> Result<Vec<NameCount>> {
        self.names(t, "t#").await
    }

    async fn names(&self, t: &Tenant, prefix: &str) -> Result<Vec<NameCount>> {
        let counters = self
            .counters(&t.account_id, SkCond::BeginsWith(prefix.into()))
            .await?;
        Ok(group_names(counters.into_iter().filter_map(|(sk, n)| {
            sk.strip_prefix(prefix).map(|name| (name.to_string(), n))
        })))
    }

    /// The first second of the 7-day window of [`Stats::created_last_7_days`] (and, with
    /// `days = 30`, of the 30-day one), for callers that want the matching list filter.
    pub fn window_start(&self, days: i64) -> i64 {
        (self.deps.clock.now_secs().div_euclid(86_400) - (days - 1)) * 86_400
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lead(v: serde_json::Value) -> Lead {
        let mut base = serde_json::json!({
            "id": "cl_1", "name": "n", "source": "web", "description": null, "address": null,
            "city": null, "state": null, "country": null, "postal_code": null,
            "latitude": null, "longitude": null, "phone": null, "email": null,
            "website": null, "rating": null, "review_count": null, "category": null,
            "source_id": null, "logo_url": null,
            "created_at": 86_400 * 3, "updated_at": 1, "last_interaction_at": 1
        });
        for (k, x) in v.as_object().unwrap() {
            base[k] = x.clone();
        }
        serde_json::from_value(base).unwrap()
    }

    fn deltas(ops: &[WriteOp]) -> BTreeMap<String, i64> {
        ops.iter()
            .map(|op| match op {
                WriteOp::Add { key, delta, .. } => (key.sk.clone(), *delta),
                other => panic!("unexpected op {other:?}"),
            })
            .collect()
    }

    #[test]
    fn an_update_writes_only_the_counters_that_move_once_each() {
        let old = lead(serde_json::json!({"city": "Paris", "score": 75.0}));
        let new = lead(serde_json::json!({"city": "paris", "score": 75.0, "email": "a@b.co"}));
        let d = deltas(&counter_ops("a", Some(&old), Some(&new)));
        assert_eq!(
            d,
            BTreeMap::from([
                ("s#email".to_string(), 1),
                ("t#Paris".to_string(), -1),
                ("t#paris".to_string(), 1),
            ])
        );
        assert!(counter_ops("a", Some(&old), Some(&old)).is_empty());
        let created = deltas(&counter_ops("a", None, Some(&old)));
        assert_eq!(created["s#score#high"], 1);
        assert_eq!(created["s#score#sum"], 75_000);
        assert_eq!(created["d#000003"], 1);
        assert_eq!(created["s#status#new"], 1);
    }

    #[test]
    fn names_group_case_insensitively_in_the_most_written_spelling() {
        let got = group_names([
            ("Paris".to_string(), 2),
            ("PARIS".to_string(), 1),
            ("paris".to_string(), 3),
            ("Berlin".to_string(), 6),
            ("Athens".to_string(), 6),
            ("Gone".to_string(), 0),
        ]);
        let got: Vec<(&str, u64)> = got.iter().map(|n| (n.name.as_str(), n.count)).collect();
        assert_eq!(got, [("Athens", 6), ("Berlin", 6), ("paris", 6)]);
    }
}
