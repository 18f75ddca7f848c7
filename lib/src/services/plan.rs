//! The query planner: which key range or index serves a list request, and whether its order is
//! already the requested order.
//!
//! Both stores run the same plan (the key design lives in `crate::schema`), so the embedded store
//! exercises exactly what DynamoDB will do. The cost of each plan shape is documented in
//! `lib/docs/query-cost.md`.

use crate::domain::filter::{FilterSet, NumOp, NumRef, Pred, TextOp, TextRef};
use crate::domain::lead::{Status, TextField};
use crate::domain::query::{Sort, SortField, SortOrder};
use crate::ports::SkCond;
use crate::schema::{self, IDX_CITY, IDX_RATING, IDX_SCORE, IDX_SOURCE, IDX_STATUS};

/// Where the planner reads from.
#[derive(Debug, Clone, PartialEq)]
pub enum Access {
    /// The tenant's lead items on the base table, in id (= `created_at`) order.
    Base,
    /// A secondary index partition, optionally narrowed by a sort-key range.
    Index {
        /// Index name.
        index: &'static str,
        /// Index partition key.
        pk: String,
        /// Sort-key condition.
        sk: SkCond,
    },
}

/// How the read items become a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// The access order is the requested order: stream, filter the rest in Rust, stop at the
    /// page size or the read budget, and resume from the exact key position.
    KeyOrdered,
    /// The access yields a bounded candidate set in another order: read it whole, filter,
    /// sort in memory, and resume after the last (value, id).
    Candidates,
}

/// A plan for one list request.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Where to read.
    pub access: Access,
    /// How to turn reads into a page.
    pub strategy: Strategy,
    /// Read the access path in descending key order.
    pub descending: bool,
    /// A second range of the same index partition, read (in the same direction) once the
    /// first is exhausted: the leads without the sort value on a descending sort, which must
    /// still come last.
    pub then: Option<SkCond>,
}

impl Plan {
    /// A short name of the access path, for logs and tests.
    pub fn access_name(&self) -> &'static str {
        match &self.access {
            Access::Base => "base",
            Access::Index { index, .. } => index,
        }
    }
}

#[derive(Default)]
struct Range {
    lo: Option<(f64, bool)>,
    hi: Option<(f64, bool)>,
}

impl Range {
    fn add(&mut self, op: NumOp, x: f64) -> bool {
        match op {
            NumOp::Gt => self.lo = Some(tighter_lo(self.lo, (x, false))),
            NumOp::Gte => self.lo = Some(tighter_lo(self.lo, (x, true))),
            NumOp::Lt => self.hi = Some(tighter_hi(self.hi, (x, false))),
            NumOp::Lte => self.hi = Some(tighter_hi(self.hi, (x, true))),
            NumOp::Eq => {
                self.lo = Some(tighter_lo(self.lo, (x, true)));
                self.hi = Some(tighter_hi(self.hi, (x, true)));
            }
            NumOp::Neq => return false,
        }
        true
    }

    fn is_set(&self) -> bool {
        self.lo.is_some() || self.hi.is_some()
    }

    /// The sort-key condition on `<sortable value>#<id>` keys.
    fn sk(&self) -> SkCond {
        // Every key of value x starts with enc(x) + "#", and '$' sorts right after '#'.
        let lo = self.lo.map(|(x, incl)| {
            let e = schema::sortable_f64(x);
            if incl { e } else { format!("{e}$") }
        });
        let hi = self.hi.map(|(x, incl)| {
            let e = schema::sortable_f64(x);
            if incl { format!("{e}$") } else { e }
        });
        match (lo, hi) {
            (Some(l), Some(h)) => SkCond::Between(l, h),
            // Keep the leads without a value (under `m#`) out of a lower-bounded range.
            (Some(l), None) => SkCond::Between(l, schema::PRESENT_END.into()),
            (None, Some(h)) if self.hi.is_some_and(|(_, incl)| incl) => SkCond::Le(h),
            (None, Some(h)) => SkCond::Lt(h),
            (None, None) => SkCond::Any,
        }
    }
}

fn tighter_lo(cur: Option<(f64, bool)>, new: (f64, bool)) -> (f64, bool) {
    match cur {
        Some(c) if c.0 > new.0 || (c.0 == new.0 && !c.1) => c,
        _ => new,
    }
}

fn tighter_hi(cur: Option<(f64, bool)>, new: (f64, bool)) -> (f64, bool) {
    match cur {
        Some(c) if c.0 < new.0 || (c.0 == new.0 && !c.1) => c,
        _ => new,
    }
}

/// Chooses the access path and strategy for a list request.
pub fn plan(account_id: &str, filters: &FilterSet, sort: &Sort) -> Plan {
    let tenant = schema::tenant_pk(account_id);
    let descending = sort.order == SortOrder::Desc;
    let mut eq_index: Option<(u8, Access)> = None;
    let mut score = Range::default();
    let mut rating = Range::default();
    for p in filters.and_preds() {
        match p {
            Pred::Text {
                field,
                op: TextOp::Eq,
                needle,
                ..
            } => {
                // Most selective first: city, then source, then status.
                let cand = match field {
                    TextRef::Opt(TextField::City) => Some((3, IDX_CITY.name, needle.clone())),
                    TextRef::Source => Some((2, IDX_SOURCE.name, needle.clone())),
                    TextRef::Status => Status::parse(needle)
                        .ok()
                        .map(|s| (1, IDX_STATUS.name, s.as_str().to_string())),
                    _ => None,
                };
                if let Some((rank, index, value)) = cand
                    && eq_index.as_ref().is_none_or(|(r, _)| *r < rank)
                {
                    eq_index = Some((
                        rank,
                        Access::Index {
                            index,
                            pk: schema::eq_index_pk(&tenant, &value),
                            sk: SkCond::Any,
                        },
                    ));
                }
            }
            Pred::Num {
                field: NumRef::Score,
                op,
                x,
            } => {
                score.add(*op, *x);
            }
            Pred::Num {
                field: NumRef::Rating,
                op,
                x,
            } => {
                rating.add(*op, *x);
            }
            _ => {}
        }
    }
    let index = |index: &'static str, sk: SkCond| Access::Index {
        index,
        pk: tenant.clone(),
        sk,
    };
    let ordered = |access, then| Plan {
        access,
        strategy: Strategy::KeyOrdered,
        descending,
        then,
    };
    if sort.field == SortField::CreatedAt {
        return ordered(eq_index.map_or(Access::Base, |(_, a)| a), None);
    }
    if let Some(def) = schema::sort_index(&sort.field) {
        // A range on the sorted field itself becomes the key condition (it excludes the
        // leads without a value, which the range filter rejects anyway).
        let range = match &sort.field {
            SortField::Score if score.is_set() => Some(score.sk()),
            SortField::Rating if rating.is_set() => Some(rating.sk()),
            _ => None,
        };
        return match range {
            Some(sk) => ordered(index(def.name, sk), None),
            // Ascending, the index order is already values then missing ones.
            None if !descending => ordered(index(def.name, SkCond::Any), None),
            None => ordered(
                index(def.name, SkCond::Lt(schema::PRESENT_END.into())),
                Some(SkCond::BeginsWith(schema::MISSING_PREFIX.into())),
            ),
        };
    }
    let access = match eq_index {
        Some((_, a)) => a,
        None if rating.is_set() => index(IDX_RATING.name, rating.sk()),
        None if score.is_set() => index(IDX_SCORE.name, score.sk()),
        None => Access::Base,
    };
    Plan {
        access,
        strategy: Strategy::Candidates,
        descending: false,
        then: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(filters: &[&str], sort_by: &str, order: &str) -> Plan {
        let f = FilterSet::parse(filters).unwrap();
        let sort = Sort {
            field: SortField::parse(sort_by).unwrap(),
            order: SortOrder::parse(order).unwrap(),
        };
        plan("acct", &f, &sort)
    }

    #[test]
    fn equality_filters_use_their_index_in_created_order() {
        let pl = p(&["and.eq.status.Qualified"], "", "");
        assert_eq!(pl.access_name(), "by_status");
        assert_eq!(pl.strategy, Strategy::KeyOrdered);
        assert!(matches!(&pl.access, Access::Index { pk, .. } if pk == "A#acct#qualified"));
        assert_eq!(
            p(&["and.eq.source.Google Maps"], "created_at", "desc").access_name(),
            "by_source"
        );
        let pl = p(
            &["and.eq.status.new", "and.eq.city.Paris", "and.eq.source.x"],
            "",
            "",
        );
        assert_eq!(pl.access_name(), "by_city", "city is the most selective");
        assert!(matches!(&pl.access, Access::Index { pk, .. } if pk == "A#acct#paris"));
        assert_eq!(
            p(&["or.eq.city.Paris"], "", "").access_name(),
            "base",
            "or filters cannot narrow"
        );
        assert_eq!(p(&["and.eq.status.bogus"], "", "").access_name(), "base");
    }

    #[test]
    fn score_and_rating_ranges_become_key_conditions() {
        let pl = p(&["and.gte.score.50", "and.lt.score.80"], "score", "desc");
        assert_eq!(pl.access_name(), "by_score");
        assert_eq!(pl.strategy, Strategy::KeyOrdered);
        assert!(pl.descending);
        assert!(matches!(
            &pl.access,
            Access::Index {
                sk: SkCond::Between(..),
                ..
            }
        ));
        let pl = p(&["and.gt.rating.4"], "rating", "asc");
        assert_eq!(
            (pl.access_name(), pl.strategy),
            ("by_rating", Strategy::KeyOrdered)
        );
        let pl = p(&["and.gt.rating.4"], "", "");
        assert_eq!(
            pl.access_name(),
            "base",
            "created_at order wins over a range read"
        );
        let pl = p(&["and.gt.rating.4"], "attr:x", "");
        assert_eq!(
            (pl.access_name(), pl.strategy),
            ("by_rating", Strategy::Candidates)
        );
    }

    #[test]
    fn sorts_pick_their_ordered_index() {
        assert_eq!(
            p(&[], "last_interaction_at", "desc").access_name(),
            "by_last_interaction"
        );
        assert_eq!(p(&[], "score", "").access_name(), "by_score");
        assert_eq!(p(&[], "", "").access_name(), "base");
        for field in [
            "name",
            "city",
            "country",
            "state",
            "category",
            "source",
            "email",
            "phone",
            "website",
            "rating",
            "review_count",
            "score",
            "updated_at",
            "last_interaction_at",
        ] {
            for order in ["asc", "desc"] {
                let pl = p(&["and.eq.city.Paris", "or.gt.rating.3"], field, order);
                assert_eq!(pl.strategy, Strategy::KeyOrdered, "{field} {order}");
                assert_ne!(pl.access_name(), "base", "{field} {order}");
                // Descending, the leads without a value are a second range read last.
                assert_eq!(pl.then.is_some(), order == "desc", "{field} {order}");
            }
        }
        let pl = p(&["and.eq.city.Paris"], "attr:employees", "desc");
        assert_eq!(
            (pl.access_name(), pl.strategy),
            ("by_city", Strategy::Candidates)
        );
        let pl = p(&["and.gte.rating.4"], "rating", "desc");
        assert!(
            pl.then.is_none(),
            "a range on the sort field excludes missing values"
        );
        assert!(matches!(
            &pl.access,
            Access::Index { sk: SkCond::Between(_, hi), .. } if hi == schema::PRESENT_END
        ));
    }
}
