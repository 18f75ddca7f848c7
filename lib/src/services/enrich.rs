//! Enrichment use cases: notes, typed attributes and scoring rules, with scores kept current.

use crate::domain::account::Tenant;
use crate::domain::event::names;
use crate::domain::lead::{Attribute, AttributeSpec, Lead, LeadChanges};
use crate::domain::note::{Note, validate_content};
use crate::domain::rule::{MAX_RULE_NAME, MAX_RULES, ScoringRule};
use crate::domain::scoring::{self, Expr};
use crate::error::{Error, Result};
use crate::ports::{Cond, Item, Key, QueryReq, SkCond, StoreError, Table, WriteOp};
use crate::schema;
use crate::services::leads::LeadService;
use crate::services::writes::EventMode;
use crate::services::{from_body, to_body};

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
#[derive(Debug, Clone, serde::Serialize)]
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
#[derive(Debug, Clone, serde::Serialize)]
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

impl LeadService {
    // ---------------------------------------------------------------- scoring rules

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

    /// Reads one rule.
    pub async fn get_rule(&self, t: &Tenant, id: &str) -> Result<(ScoringRule, u64)> {
        let item = self
            .deps
            .store
            .get(Table::Leads, &schema::rule_key(&t.account_id, id))
            .await?
            .ok_or_else(|| Error::NotFound("Scoring rule not found".into()))?;
        Ok((from_body(&item.body)?, item.version))
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
        self.deps
            .store
            .transact(vec![WriteOp::Put {
                table: Table::Leads,
                item: Item::new(schema::rule_key(&t.account_id, &rule.id), to_body(&rule)?),
                cond: Cond::NotExists,
            }])
            .await?;
        self.rescore_after_rule_change(t).await?;
        Ok(rule)
    }

    /// Changes a rule and rescores the account's leads.
    pub async fn update_rule(&self, t: &Tenant, id: &str, c: RuleChanges) -> Result<ScoringRule> {
        let (mut rule, version) = self.get_rule(t, id).await?;
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
        self.deps
            .store
            .transact(vec![WriteOp::Put {
                table: Table::Leads,
                item,
                cond: Cond::Version(version),
            }])
            .await?;
        self.rescore_after_rule_change(t).await?;
        Ok(rule)
    }

    /// Deletes a rule and rescores the account's leads.
    pub async fn delete_rule(&self, t: &Tenant, id: &str) -> Result<()> {
        self.deps
            .store
            .transact(vec![WriteOp::Delete {
                table: Table::Leads,
                key: schema::rule_key(&t.account_id, id),
                cond: Cond::Exists,
            }])
            .await
            .map_err(|e| match e {
                StoreError::ConditionFailed(_) => Error::NotFound("Scoring rule not found".into()),
                other => other.into(),
            })?;
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

    /// Rescores every lead of the account; returns (leads examined, leads whose score changed).
    /// Changed scores are written with their `leads.scored` member events and folded into one
    /// grouped event.
    pub async fn rescore_all(&self, t: &Tenant) -> Result<(usize, usize)> {
        let rules = self.compiled_rules(t).await?;
        let group = self.deps.ids.random().to_string();
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
            total += page.items.len();
            for item in &page.items {
                // A changed score is written from the document just read, if no one changed the
                // lead since; otherwise the lead is reloaded and rescored.
                let mut lead: Lead = from_body(&item.body)?;
                let score = score_of(&rules, &lead);
                if (score - lead.score).abs() < 1e-9 {
                    continue;
                }
                lead.score = score;
                let ops = self.score_ops(t, &lead, item.version, Some(&group))?;
                let written = match self.deps.store.transact(ops).await {
                    Ok(()) => Some(score),
                    Err(StoreError::ConditionFailed(_)) => {
                        self.write_score(t, &lead.id, &rules, Some(&group)).await?
                    }
                    Err(e) => return Err(e.into()),
                };
                if let Some(score) = written {
                    changed.push(serde_json::json!({ "id": lead.id, "score": score }));
                }
            }
            match page.last {
                Some(p) => start = Some(p),
                None => break,
            }
        }
        let n = changed.len();
        for chunk in changed.chunks(1000) {
            self.finish_group_with(
                t,
                &group,
                names::LEADS_SCORED,
                serde_json::json!({ "leads": chunk, "count": chunk.len() }),
            )
            .await?;
        }
        Ok((total, n))
    }

    /// Recomputes and stores one lead's score; `None` when it did not change.
    async fn write_score(
        &self,
        t: &Tenant,
        id: &str,
        rules: &[CompiledRule],
        group: Option<&str>,
    ) -> Result<Option<f64>> {
        for _ in 0..10 {
            let (mut lead, version) = match self.load(t, id).await {
                Ok(x) => x,
                Err(Error::NotFound(_)) => return Ok(None),
                Err(e) => return Err(e),
            };
            let score = score_of(rules, &lead);
            if (score - lead.score).abs() < 1e-9 {
                return Ok(None);
            }
            lead.score = score;
            let ops = self.score_ops(t, &lead, version, group)?;
            match self.deps.store.transact(ops).await {
                Ok(()) => return Ok(Some(score)),
                Err(StoreError::ConditionFailed(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Conflict {
            code: "conflict",
            message: "the lead is being changed concurrently; please retry".into(),
        })
    }

    /// The writes that store `lead` (read at `version`) with its new score, and its event: a
    /// member of `group` (`leads.scored`) or a `lead.scored` of its own.
    fn score_ops(
        &self,
        t: &Tenant,
        lead: &Lead,
        version: u64,
        group: Option<&str>,
    ) -> Result<Vec<WriteOp>> {
        let data = serde_json::json!({ "id": lead.id, "score": lead.score });
        let event = match group {
            Some(g) => {
                self.deps
                    .outbox_event(&t.account_id, names::LEADS_SCORED, data, Some(g))?
                    .1
            }
            None => self
                .deps
                .outbox_put(&t.account_id, names::LEAD_SCORED, data)?,
        };
        Ok(vec![
            WriteOp::Put {
                table: Table::Leads,
                item: self.lead_item(t, lead, version + 1)?,
                cond: Cond::Version(version),
            },
            event,
        ])
    }

    /// `POST /leads/{id}/score`: recomputes, stores and returns the score.
    pub async fn rescore_one(&self, t: &Tenant, id: &str) -> Result<f64> {
        let rules = self.compiled_rules(t).await?;
        match self.write_score(t, id, &rules, None).await? {
            Some(s) => Ok(s),
            None => Ok(self.get(t, id).await?.score),
        }
    }

    /// Each rule's value, weight and contribution for one lead.
    pub async fn explain_score(&self, t: &Tenant, id: &str) -> Result<ScoreExplanation> {
        let lead = self.get(t, id).await?;
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

    // ---------------------------------------------------------------- attributes

    /// A lead's attributes.
    pub async fn list_attributes(&self, t: &Tenant, lead_id: &str) -> Result<Vec<Attribute>> {
        Ok(self.get(t, lead_id).await?.attributes)
    }

    /// Creates an attribute, or replaces the value of the one with that name. Returns the
    /// attribute and whether it was created.
    pub async fn upsert_attribute(
        &self,
        t: &Tenant,
        lead_id: &str,
        spec: AttributeSpec,
    ) -> Result<(Attribute, bool)> {
        let existed = self
            .get(t, lead_id)
            .await?
            .attributes
            .iter()
            .any(|a| a.name == spec.name);
        let name = spec.name.clone();
        let changes = LeadChanges {
            attributes: vec![spec],
            ..Default::default()
        };
        let lead = self
            .update_with(t, lead_id, &changes, EventMode::Single)
            .await?;
        let attr = lead
            .attributes
            .into_iter()
            .find(|a| a.name == name)
            .ok_or_else(|| Error::internal("attribute vanished after upsert"))?;
        Ok((attr, !existed))
    }

    /// Replaces an attribute's value, keeping its name and type.
    pub async fn set_attribute_value(
        &self,
        t: &Tenant,
        lead_id: &str,
        attr_id: &str,
        value: serde_json::Value,
    ) -> Result<Attribute> {
        let lead = self.get(t, lead_id).await?;
        let attr = lead
            .attributes
            .iter()
            .find(|a| a.id == attr_id)
            .ok_or_else(|| Error::NotFound("Attribute not found".into()))?;
        let spec = AttributeSpec::new(&attr.name, attr.ty.as_str(), value)?;
        Ok(self.upsert_attribute(t, lead_id, spec).await?.0)
    }

    /// Deletes an attribute.
    pub async fn delete_attribute(&self, t: &Tenant, lead_id: &str, attr_id: &str) -> Result<()> {
        let lead = self.get(t, lead_id).await?;
        let attr = lead
            .attributes
            .iter()
            .find(|a| a.id == attr_id)
            .ok_or_else(|| Error::NotFound("Attribute not found".into()))?;
        let changes = LeadChanges {
            remove_attributes: vec![attr.name.clone()],
            ..Default::default()
        };
        self.update_with(t, lead_id, &changes, EventMode::Single)
            .await?;
        Ok(())
    }

    // ---------------------------------------------------------------- notes

    /// Adds a note to a lead.
    pub async fn create_note(&self, t: &Tenant, lead_id: &str, content: &str) -> Result<Note> {
        let content = validate_content(content)?;
        self.get(t, lead_id).await?;
        let now_ms = self.deps.clock.now_ms();
        let note = Note {
            id: format!("note_{}", self.deps.ids.time_ordered(now_ms)),
            lead_id: lead_id.to_string(),
            content,
            created_at: now_ms.div_euclid(1000),
            updated_at: now_ms.div_euclid(1000),
        };
        let ops = vec![
            // The lead must still exist when the note is written.
            WriteOp::Check {
                table: Table::Leads,
                key: schema::lead_key(&t.account_id, lead_id),
                cond: Cond::Exists,
            },
            WriteOp::Put {
                table: Table::Leads,
                item: Item::new(
                    schema::note_key(&t.account_id, lead_id, &note.id),
                    to_body(&note)?,
                ),
                cond: Cond::NotExists,
            },
            WriteOp::Put {
                table: Table::Leads,
                item: Item::new(
                    schema::note_pointer_key(&t.account_id, &note.id),
                    to_body(&serde_json::json!({ "lead_id": lead_id }))?,
                ),
                cond: Cond::NotExists,
            },
            self.deps.outbox_put(
                &t.account_id,
                names::NOTE_CREATED,
                serde_json::to_value(&note).map_err(Error::internal)?,
            )?,
        ];
        self.deps.store.transact(ops).await.map_err(|e| match e {
            StoreError::ConditionFailed(0) => Error::lead_not_found(),
            other => other.into(),
        })?;
        Ok(note)
    }

    /// A lead's notes, newest first.
    pub async fn list_notes(&self, t: &Tenant, lead_id: &str) -> Result<Vec<Note>> {
        self.get(t, lead_id).await?;
        let items = self.note_items(t, lead_id, true).await?;
        items.iter().map(|i| from_body::<Note>(&i.body)).collect()
    }

    async fn load_note(&self, t: &Tenant, note_id: &str) -> Result<(Note, u64, Key)> {
        let missing = || Error::NotFound("Note not found".into());
        if !note_id.starts_with("note_") || note_id.len() > 80 {
            return Err(missing());
        }
        let ptr = self
            .deps
            .store
            .get(
                Table::Leads,
                &schema::note_pointer_key(&t.account_id, note_id),
            )
            .await?
            .ok_or_else(missing)?;
        let v: serde_json::Value = from_body(&ptr.body)?;
        let lead_id = v["lead_id"].as_str().unwrap_or_default().to_string();
        let key = schema::note_key(&t.account_id, &lead_id, note_id);
        let item = self
            .deps
            .store
            .get(Table::Leads, &key)
            .await?
            .ok_or_else(missing)?;
        Ok((from_body(&item.body)?, item.version, key))
    }

    /// Edits a note's content.
    pub async fn update_note(&self, t: &Tenant, note_id: &str, content: &str) -> Result<Note> {
        let content = validate_content(content)?;
        for _ in 0..10 {
            let (mut note, version, key) = self.load_note(t, note_id).await?;
            let changed = note.content != content;
            note.content.clone_from(&content);
            if changed {
                note.updated_at = self.deps.clock.now_secs();
            }
            let mut item = Item::new(key, to_body(&note)?);
            item.version = version + 1;
            let mut ops = vec![WriteOp::Put {
                table: Table::Leads,
                item,
                cond: Cond::Version(version),
            }];
            if changed {
                ops.push(self.deps.outbox_put(
                    &t.account_id,
                    names::NOTE_UPDATED,
                    serde_json::to_value(&note).map_err(Error::internal)?,
                )?);
            }
            match self.deps.store.transact(ops).await {
                Ok(()) => return Ok(note),
                Err(StoreError::ConditionFailed(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Conflict {
            code: "conflict",
            message: "the note is being changed concurrently; please retry".into(),
        })
    }

    /// Deletes a note.
    pub async fn delete_note(&self, t: &Tenant, note_id: &str) -> Result<()> {
        let (note, version, key) = self.load_note(t, note_id).await?;
        self.deps
            .store
            .transact(vec![
                WriteOp::Delete {
                    table: Table::Leads,
                    key,
                    cond: Cond::Version(version),
                },
                WriteOp::Delete {
                    table: Table::Leads,
                    key: schema::note_pointer_key(&t.account_id, note_id),
                    cond: Cond::Always,
                },
                self.deps.outbox_put(
                    &t.account_id,
                    names::NOTE_DELETED,
                    serde_json::to_value(&note).map_err(Error::internal)?,
                )?,
            ])
            .await
            .map_err(|e| match e {
                StoreError::ConditionFailed(_) => Error::NotFound("Note not found".into()),
                other => other.into(),
            })
    }

    /// The stored items of a lead's notes, newest first when `descending`.
    async fn note_items(&self, t: &Tenant, lead_id: &str, descending: bool) -> Result<Vec<Item>> {
        self.deps
            .query_all(QueryReq {
                table: Table::Leads,
                index: None,
                pk: schema::tenant_pk(&t.account_id),
                sk: SkCond::BeginsWith(schema::note_prefix(lead_id)),
                start_after: None,
                descending,
                limit: 500,
            })
            .await
    }

    /// The writes that remove a deleted lead's notes (note items and their pointers).
    pub(crate) async fn note_cleanup(&self, t: &Tenant, lead_id: &str) -> Result<Vec<Key>> {
        let items = self.note_items(t, lead_id, false).await?;
        let mut keys = Vec::with_capacity(items.len() * 2);
        for item in &items {
            let note: Note = from_body(&item.body)?;
            keys.push(item.key.clone());
            keys.push(schema::note_pointer_key(&t.account_id, &note.id));
        }
        Ok(keys)
    }
}
