//! Scoring rules and rescoring: rule CRUD, keeping every lead's stored score current when the
//! rules change, rescoring on request, and explaining a score rule by rule.

use crate::domain::account::Tenant;
use crate::domain::event::EventKind;
use crate::domain::ids::{LeadId, RuleId};
use crate::domain::lead::Lead;
use crate::domain::rule::{MAX_RULE_NAME, MAX_RULES, ScoringRule};
use crate::domain::scoring::{self, Expr};
use crate::error::{Error, Result};
use crate::ports::{Cond, Item, QueryReq, SkCond, Table, WriteOp};
use crate::schema;
use crate::services::events::{self, EventMode};
use crate::services::leads::{lead_item, load_lead};
use crate::services::txn::{Check, Txn, TxnError};
use crate::services::{Deps, from_body, to_body};

/// Accounts with at most this many leads are rescored inside the request that changed a rule;
/// larger ones are rescored in the background.
pub const INLINE_RESCORE_LIMIT: i64 = 2000;

/// A compiled rule.
pub struct CompiledRule {
    /// The stored rule.
    pub rule: ScoringRule,
    /// Its parsed expression.
    pub expr: Expr,
}

/// Changes to a scoring rule (absent fields stay as they are).
#[derive(Debug, Clone, Default)]
pub struct RuleChanges {
    /// New name.
    pub name: Option<String>,
    /// New expression (validated on write).
    pub expression: Option<String>,
    /// New weight.
    pub weight: Option<f64>,
    /// New priority.
    pub priority: Option<i32>,
}

/// The score of one lead, rule by rule.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct ScoreExplanation {
    /// Lead id.
    pub id: String,
    /// The score: clamp(Σ contribution, 0, 100).
    pub score: f64,
    /// Sum of contributions before clamping.
    pub raw_total: f64,
    /// One entry per rule, in rule-list order.
    pub rules: Vec<RuleContribution>,
}

/// One rule's part in a score.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct RuleContribution {
    /// Rule id.
    pub id: String,
    /// Rule name.
    pub name: String,
    /// Rule expression.
    pub expression: String,
    /// What the expression evaluated to for this lead.
    pub value: f64,
    /// The rule's weight.
    pub weight: f64,
    /// value × weight.
    pub contribution: f64,
}

/// What a rescoring run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RescoreSummary {
    /// Leads examined.
    pub total: usize,
    /// Leads whose stored score changed.
    pub updated: usize,
}

fn check_rule(name: &str, expression: &str, weight: f64) -> Result<()> {
    if name.trim().is_empty() {
        return Err(Error::invalid("name is required"));
    }
    if name.chars().count() > MAX_RULE_NAME {
        return Err(Error::invalid(format!(
            "name: longer than {MAX_RULE_NAME} characters"
        )));
    }
    if !weight.is_finite() {
        return Err(Error::invalid("weight: must be a finite number"));
    }
    Expr::parse(expression)?;
    Ok(())
}

/// Computes a lead's score under compiled rules.
pub fn score_of(rules: &[CompiledRule], lead: &Lead) -> f64 {
    scoring::score_weighted(rules.iter().map(|r| (&r.expr, r.rule.weight)), lead)
}

/// Scoring rules and rescoring.
#[derive(Clone)]
pub struct ScoringService {
    deps: Deps,
}

impl ScoringService {
    /// Builds the service.
    pub fn new(deps: Deps) -> Self {
        ScoringService { deps }
    }

    /// The account's rules, highest priority first (then oldest first).
    pub async fn list_rules(&self, t: &Tenant) -> Result<Vec<ScoringRule>> {
        let page = self
            .deps
            .store
            .query(&QueryReq {
                table: Table::Leads,
                index: None,
                pk: schema::tenant_pk(&t.account_id),
                sk: SkCond::BeginsWith(schema::RULE_PREFIX.into()),
                start_after: None,
                descending: false,
                limit: MAX_RULES as u32 + 1,
            })
            .await?;
        let mut rules = page
            .items
            .iter()
            .map(|i| from_body::<ScoringRule>(&i.body))
            .collect::<Result<Vec<_>>>()?;
        rules.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then(a.created_at.cmp(&b.created_at))
                .then(a.id.cmp(&b.id))
        });
        Ok(rules)
    }

    /// The account's rules, compiled. Stored rules were validated when written; one that no
    /// longer parses (after a language change) is skipped rather than failing every write.
    pub async fn compiled_rules(&self, t: &Tenant) -> Result<Vec<CompiledRule>> {
        Ok(self
            .list_rules(t)
            .await?
            .into_iter()
            .filter_map(|rule| {
                Expr::parse(&rule.expression)
                    .ok()
                    .map(|expr| CompiledRule { rule, expr })
            })
            .collect())
    }

    async fn load_rule(&self, t: &Tenant, id: &RuleId) -> Result<(ScoringRule, u64)> {
        let item = self
            .deps
            .store
            .get(Table::Leads, &schema::rule_key(&t.account_id, id))
            .await?
            .ok_or_else(RuleId::not_found)?;
        Ok((from_body(&item.body)?, item.version))
    }

    /// Reads one rule.
    pub async fn get_rule(&self, t: &Tenant, id: &RuleId) -> Result<ScoringRule> {
        Ok(self.load_rule(t, id).await?.0)
    }

    /// Creates a rule and rescores the account's leads.
    pub async fn create_rule(&self, t: &Tenant, c: RuleChanges) -> Result<ScoringRule> {
        let name = c.name.unwrap_or_default();
        let expression = c
            .expression
            .ok_or_else(|| Error::invalid("expression is required"))?;
        let weight = c.weight.unwrap_or(1.0);
        check_rule(&name, &expression, weight)?;
        if self.list_rules(t).await?.len() >= MAX_RULES {
            return Err(Error::invalid(format!(
                "an account has at most {MAX_RULES} scoring rules"
            )));
        }
        let now = self.deps.clock.now_secs();
        let rule = ScoringRule {
            id: self.deps.ids.random().to_string(),
            name: name.trim().to_string(),
            expression,
            weight,
            priority: c.priority.unwrap_or(0),
            created_at: now,
            updated_at: now,
        };
        let mut tx = Txn::new();
        tx.push(
            Check::RuleAbsent,
            WriteOp::Put {
                table: Table::Leads,
                item: Item::new(schema::rule_key(&t.account_id, &rule.id), to_body(&rule)?),
                cond: Cond::NotExists,
            },
        );
        tx.commit(&*self.deps.store)
            .await
            .map_err(|e| e.into_error("a rule with this id already exists; please retry"))?;
        self.rescore_after_rule_change(t).await?;
        Ok(rule)
    }

    /// Changes a rule and rescores the account's leads.
    pub async fn update_rule(
        &self,
        t: &Tenant,
        id: &RuleId,
        c: RuleChanges,
    ) -> Result<ScoringRule> {
        let (mut rule, version) = self.load_rule(t, id).await?;
        if let Some(n) = c.name {
            rule.name = n.trim().to_string();
        }
        if let Some(e) = c.expression {
            rule.expression = e;
        }
        if let Some(w) = c.weight {
            rule.weight = w;
        }
        if let Some(p) = c.priority {
            rule.priority = p;
        }
        check_rule(&rule.name, &rule.expression, rule.weight)?;
        rule.updated_at = self.deps.clock.now_secs();
        let mut item = Item::new(schema::rule_key(&t.account_id, id), to_body(&rule)?);
        item.version = version + 1;
        let mut tx = Txn::new();
        tx.push(
            Check::RuleVersion,
            WriteOp::Put {
                table: Table::Leads,
                item,
                cond: Cond::Version(version),
            },
        );
        tx.commit(&*self.deps.store)
            .await
            .map_err(|e| e.into_error("the rule changed concurrently; please retry"))?;
        self.rescore_after_rule_change(t).await?;
        Ok(rule)
    }

    /// Deletes a rule and rescores the account's leads.
    pub async fn delete_rule(&self, t: &Tenant, id: &RuleId) -> Result<()> {
        let mut tx = Txn::new();
        tx.push(
            Check::RuleExists,
            WriteOp::Delete {
                table: Table::Leads,
                key: schema::rule_key(&t.account_id, id),
                cond: Cond::Exists,
            },
        );
        match tx.commit(&*self.deps.store).await {
            Ok(()) => {}
            Err(TxnError::Failed(_)) => return Err(RuleId::not_found()),
            Err(TxnError::Store(e)) => return Err(e),
        }
        self.rescore_after_rule_change(t).await
    }

    async fn rescore_after_rule_change(&self, t: &Tenant) -> Result<()> {
        let count = self
            .deps
            .store
            .get(Table::Accounts, &schema::lead_counter_key(&t.account_id))
            .await?
            .map_or(0, |i| i.counter);
        if count <= INLINE_RESCORE_LIMIT {
            self.rescore_all(t).await?;
            return Ok(());
        }
        let this = self.clone();
        let tenant = t.clone();
        tokio::spawn(async move {
            if let Err(e) = this.rescore_all(&tenant).await {
                tracing::error!(error = %e, account = %tenant.account_id, "background rescore failed");
            }
        });
        Ok(())
    }

    /// Rescores every lead of the account. Changed scores are written with their
    /// `leads.scored` member events and folded into one grouped event.
    pub async fn rescore_all(&self, t: &Tenant) -> Result<RescoreSummary> {
        let rules = self.compiled_rules(t).await?;
        let set = scoring::RuleSet::new(rules.iter().map(|r| (&r.expr, r.rule.weight)));
        let mut stored = scoring::StoredLeads::new(&set);
        let group = events::new_group(&self.deps);
        let mode = EventMode::Member(&group);
        let mut start = None;
        let mut total = 0usize;
        let mut changed: Vec<serde_json::Value> = Vec::new();
        loop {
            let page = self
                .deps
                .store
                .query(&QueryReq {
                    table: Table::Leads,
                    index: None,
                    pk: schema::tenant_pk(&t.account_id),
                    sk: SkCond::BeginsWith(schema::LEAD_PREFIX.into()),
                    start_after: start,
                    descending: false,
                    limit: 200,
                })
                .await?;
            // Only what the rules read is parsed out of each document (see
            // `scoring::StoredLeads`); a lead whose score changed is then parsed whole from the
            // same document and written back if no one changed it since it was read, else
            // reloaded and rescored.
            stored.clear();
            for item in &page.items {
                stored.push(&item.body).map_err(|e| {
                    Error::internal(format!("corrupt stored document {}: {e}", item.key.sk))
                })?;
            }
            total += stored.len();
            for (i, score) in stored.scores().into_iter().enumerate() {
                if (score - stored.stored_score(i)).abs() < 1e-9 {
                    continue;
                }
                let id = LeadId::from_trusted(stored.id(i));
                let written = match page.items.get(i) {
                    Some(item) => {
                        let mut lead: Lead = from_body(&item.body)?;
                        lead.score = score;
                        match self
                            .score_txn(t, &lead, item.version, mode)?
                            .commit(&*self.deps.store)
                            .await
                        {
                            Ok(()) => Some(score),
                            Err(TxnError::Failed(_)) => {
                                self.write_score(t, &id, &rules, mode).await?
                            }
                            Err(TxnError::Store(e)) => return Err(e),
                        }
                    }
                    None => self.write_score(t, &id, &rules, mode).await?,
                };
                if let Some(score) = written {
                    changed.push(serde_json::json!({ "id": id, "score": score }));
                }
            }
            match page.last {
                Some(p) => start = Some(p),
                None => break,
            }
        }
        let updated = changed.len();
        for chunk in changed.chunks(1000) {
            events::finish_group(
                &self.deps,
                t,
                &group,
                EventKind::LeadsScored,
                serde_json::json!({ "leads": chunk, "count": chunk.len() }),
            )
            .await?;
        }
        Ok(RescoreSummary { total, updated })
    }

    /// Recomputes and stores one lead's score; `None` when it did not change.
    async fn write_score(
        &self,
        t: &Tenant,
        id: &LeadId,
        rules: &[CompiledRule],
        mode: EventMode<'_>,
    ) -> Result<Option<f64>> {
        for _ in 0..10 {
            let (mut lead, version) = match load_lead(&self.deps, t, id).await {
                Ok(x) => x,
                Err(Error::NotFound(_)) => return Ok(None),
                Err(e) => return Err(e),
            };
            let score = score_of(rules, &lead);
            if (score - lead.score).abs() < 1e-9 {
                return Ok(None);
            }
            lead.score = score;
            match self
                .score_txn(t, &lead, version, mode)?
                .commit(&*self.deps.store)
                .await
            {
                Ok(()) => return Ok(Some(score)),
                Err(TxnError::Failed(_)) => continue,
                Err(TxnError::Store(e)) => return Err(e),
            }
        }
        Err(Error::conflict(
            "the lead is being changed concurrently; please retry",
        ))
    }

    /// The writes that store `lead` (read at `version`) with its new score, and its event: a
    /// member of the run's `leads.scored` group, or a `lead.scored` of its own.
    fn score_txn(&self, t: &Tenant, lead: &Lead, version: u64, mode: EventMode<'_>) -> Result<Txn> {
        let data = serde_json::json!({ "id": lead.id, "score": lead.score });
        let mut tx = Txn::new();
        tx.push(
            Check::LeadVersion,
            WriteOp::Put {
                table: Table::Leads,
                item: lead_item(t, lead, version + 1)?,
                cond: Cond::Version(version),
            },
        )
        .push(
            Check::EventAbsent,
            events::mode_event_op(
                &self.deps,
                &t.account_id,
                mode,
                EventKind::LeadScored,
                EventKind::LeadsScored,
                data,
            )?,
        );
        Ok(tx)
    }

    /// Recomputes, stores and returns one lead's score.
    pub async fn rescore_one(&self, t: &Tenant, id: &LeadId) -> Result<f64> {
        let rules = self.compiled_rules(t).await?;
        match self.write_score(t, id, &rules, EventMode::Single).await? {
            Some(s) => Ok(s),
            None => Ok(load_lead(&self.deps, t, id).await?.0.score),
        }
    }

    /// Each rule's value, weight and contribution for one lead.
    pub async fn explain_score(&self, t: &Tenant, id: &LeadId) -> Result<ScoreExplanation> {
        let lead = load_lead(&self.deps, t, id).await?.0;
        let rules = self.compiled_rules(t).await?;
        let pairs: Vec<(&Expr, f64)> = rules.iter().map(|r| (&r.expr, r.rule.weight)).collect();
        let parts = scoring::explain(&pairs, &lead);
        let raw_total: f64 = parts.iter().map(|(_, c)| c).sum();
        Ok(ScoreExplanation {
            id: lead.id.clone(),
            score: scoring::score(&pairs, &lead),
            raw_total,
            rules: rules
                .iter()
                .zip(parts)
                .map(|(r, (value, contribution))| RuleContribution {
                    id: r.rule.id.clone(),
                    name: r.rule.name.clone(),
                    expression: r.rule.expression.clone(),
                    value,
                    weight: r.rule.weight,
                    contribution,
                })
                .collect(),
        })
    }
}
