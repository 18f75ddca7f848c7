//! Scoring rules and rescoring: rule CRUD, keeping every lead's stored score current when the
//! rules change, rescoring on request, and explaining a score rule by rule.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::JobsConfig;
use crate::domain::account::Tenant;
use crate::domain::event::EventKind;
use crate::domain::ids::{LeadId, RuleId};
use crate::domain::job::{Job, JobKind, JobMessage, JobStatus};
use crate::domain::lead::Lead;
use crate::domain::rule::{MAX_RULE_NAME, MAX_RULES, ScoringRule};
use crate::domain::scoring::{self, Expr};
use crate::error::{Error, Result};
use crate::ports::{
    Cond, Item, JobQueue, Key, OutMessage, Position, QueryReq, SkCond, Table, WriteOp,
};
use crate::schema;
use crate::services::accounts::account_rev_bump;
use crate::services::events::{self, EventMode};
use crate::services::leads::{lead_item, load_lead};
use crate::services::txn::{Check, Txn, TxnError};
use crate::services::{Deps, from_body, to_body};

/// Leads read and rescored per page of a rescoring job.
const RESCORE_PAGE: u32 = 200;

/// The group of a rescoring job's `leads.scored` member records.
pub fn job_group(job_id: &str) -> String {
    format!("job-{job_id}")
}

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
    queue: Arc<dyn JobQueue>,
    jobs: JobsConfig,
    cache: Arc<std::sync::Mutex<HashMap<String, CachedRules>>>,
}

/// An account's compiled rules as read at one revision ([`Tenant::account_rev`]).
struct CachedRules {
    rev: u64,
    /// When they were read (clock seconds).
    read_at: i64,
    rules: Arc<[CompiledRule]>,
}

/// Cached rules are read again after this long even if the revision has not moved: a bound
/// on how long a rule written without bumping it (by a version from before revisions, during
/// a rolling deploy) can go unseen.
const RULES_CACHE_SECS: i64 = 60;
/// Accounts whose rules are kept; past this the cache starts over.
const RULES_CACHE_ACCOUNTS: usize = 10_000;

impl ScoringService {
    /// Builds the service; rescoring jobs are continued through `queue`.
    pub fn new(deps: Deps, queue: Arc<dyn JobQueue>, jobs: JobsConfig) -> Self {
        ScoringService {
            deps,
            queue,
            jobs,
            cache: Arc::default(),
        }
    }

    /// The same service reading and writing through `store` (a batch's view of the store).
    pub(crate) fn on_store(&self, store: Arc<dyn crate::ports::Store>) -> Self {
        let mut s = self.clone();
        s.deps.store = store;
        s
    }

    /// The account's rules, highest priority first (then oldest first).
    pub async fn list_rules(&self, t: &Tenant) -> Result<Vec<ScoringRule>> {
        self.list_rules_of(&t.account_id).await
    }

    async fn list_rules_of(&self, account_id: &str) -> Result<Vec<ScoringRule>> {
        let page = self
            .deps
            .store
            .query(&QueryReq {
                table: Table::Leads,
                index: None,
                pk: schema::tenant_pk(account_id),
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
    ///
    /// Every lead write scores its lead, and most accounts' rules change rarely: rules read at
    /// the revision the request was authenticated with are reused while it stays the same.
    /// Exact, because a rule write adds one to the revision in its own transaction and rules
    /// read after the revision are at least as new; `RULES_CACHE_SECS` bounds anything else.
    pub async fn compiled_rules(&self, t: &Tenant) -> Result<Arc<[CompiledRule]>> {
        let Some(rev) = t.account_rev else {
            return Ok(self.compiled_rules_of(&t.account_id).await?.into());
        };
        let now = self.deps.clock.now_secs();
        let lock = || {
            self.cache
                .lock()
                .map_err(|_| Error::internal("rules cache lock poisoned"))
        };
        if let Some(c) = lock()?.get(&t.account_id)
            && c.rev == rev
            && (0..RULES_CACHE_SECS).contains(&(now - c.read_at))
        {
            return Ok(c.rules.clone());
        }
        let rules: Arc<[CompiledRule]> = self.compiled_rules_of(&t.account_id).await?.into();
        let mut cache = lock()?;
        if cache.len() >= RULES_CACHE_ACCOUNTS {
            cache.clear();
        }
        cache.insert(
            t.account_id.clone(),
            CachedRules {
                rev,
                read_at: now,
                rules: rules.clone(),
            },
        );
        Ok(rules)
    }

    async fn compiled_rules_of(&self, account_id: &str) -> Result<Vec<CompiledRule>> {
        Ok(self
            .list_rules_of(account_id)
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

    /// Creates a rule and rescores the account's leads (the job, when it could be started).
    pub async fn create_rule(
        &self,
        t: &Tenant,
        c: RuleChanges,
    ) -> Result<(ScoringRule, Option<Job>)> {
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
        )
        .push(Check::None, account_rev_bump(&t.account_id));
        tx.commit(&*self.deps.store)
            .await
            .map_err(|e| e.into_error("a rule with this id already exists; please retry"))?;
        Ok((rule, self.rescore_after_rule_change(t).await))
    }

    /// Changes a rule and rescores the account's leads (the job, when it could be started).
    pub async fn update_rule(
        &self,
        t: &Tenant,
        id: &RuleId,
        c: RuleChanges,
    ) -> Result<(ScoringRule, Option<Job>)> {
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
        )
        .push(Check::None, account_rev_bump(&t.account_id));
        tx.commit(&*self.deps.store)
            .await
            .map_err(|e| e.into_error("the rule changed concurrently; please retry"))?;
        Ok((rule, self.rescore_after_rule_change(t).await))
    }

    /// Deletes a rule and rescores the account's leads (the job, when it could be started).
    pub async fn delete_rule(&self, t: &Tenant, id: &RuleId) -> Result<Option<Job>> {
        let mut tx = Txn::new();
        tx.push(
            Check::RuleExists,
            WriteOp::Delete {
                table: Table::Leads,
                key: schema::rule_key(&t.account_id, id),
                cond: Cond::Exists,
            },
        )
        .push(Check::None, account_rev_bump(&t.account_id));
        match tx.commit(&*self.deps.store).await {
            Ok(()) => {}
            Err(TxnError::Failed(_)) => return Err(RuleId::not_found()),
            Err(TxnError::Store(e)) => return Err(e),
        }
        Ok(self.rescore_after_rule_change(t).await)
    }

    /// Starts the rescoring job that follows a rule change (or `POST /leads/score/batch`) and
    /// runs it inline for up to the inline budget. A continuation is queued before any work,
    /// so the job finishes even if this process stops; what is not done inline is continued
    /// by the worker from the job's cursor.
    pub async fn start_rescore(&self, t: &Tenant) -> Result<Job> {
        let now = self.deps.clock.now_secs();
        let total = self
            .deps
            .store
            .get(Table::Accounts, &schema::lead_counter_key(&t.account_id))
            .await?
            .map_or(0, |i| i.counter.max(0) as u64);
        let job = Job {
            id: self.deps.ids.random().to_string(),
            kind: JobKind::Rescore,
            status: JobStatus::Running,
            processed: 0,
            total,
            changed: 0,
            created_at: now,
            finished_at: None,
            cursor: None,
            error: None,
            steps: 0,
            lease_until_ms: None,
        };
        let mut item = Item::new(schema::job_key(&t.account_id, &job.id), to_body(&job)?);
        item.expires_at = Some(now + schema::JOB_RETENTION_SECS);
        self.deps
            .store
            .transact(vec![WriteOp::Put {
                table: Table::Accounts,
                item,
                cond: Cond::NotExists,
            }])
            .await?;
        let cont = JobMessage::Continue {
            account_id: t.account_id.clone(),
            job_id: job.id.clone(),
        };
        let backstop =
            (self.jobs.inline_budget.as_secs() as u32 + 30).min(self.queue.max_delay_secs());
        self.queue
            .send(vec![OutMessage {
                body: cont.to_body(),
                delay_secs: backstop,
            }])
            .await?;
        Ok(job)
    }

    /// Runs a started rescoring job inline within the inline budget and says where it stands.
    /// Never fails: what does not finish here (or fails) is continued by the worker.
    pub async fn run_inline(&self, account_id: &str, job: Job) -> Job {
        let id = job.id.clone();
        match self
            .run_step(account_id, &id, self.jobs.inline_budget)
            .await
        {
            Ok(Some(j)) if j.status == JobStatus::Running => {
                // Not done: let the worker continue now rather than at the backstop.
                let cont = JobMessage::Continue {
                    account_id: account_id.to_string(),
                    job_id: id,
                };
                if let Err(e) = self
                    .queue
                    .send(vec![OutMessage {
                        body: cont.to_body(),
                        delay_secs: 0,
                    }])
                    .await
                {
                    tracing::warn!(error = %e, "could not queue a rescoring continuation; the backstop will run it");
                }
                j
            }
            Ok(Some(j)) => j,
            Ok(None) => job,
            Err(e) => {
                tracing::warn!(error = %e, job = %id, "inline rescoring stopped; the worker continues it");
                job
            }
        }
    }

    /// The rescoring that follows a saved rule change: never an error, since the rule is saved
    /// and the job (if it could be started) finishes in the background.
    async fn rescore_after_rule_change(&self, t: &Tenant) -> Option<Job> {
        match self.start_rescore(t).await {
            Ok(job) => Some(self.run_inline(&t.account_id, job).await),
            Err(e) => {
                tracing::error!(error = %e, account = %t.account_id, "could not start rescoring after a rule change");
                None
            }
        }
    }

    /// Reads a job of the account.
    pub async fn get_job(&self, account_id: &str, job_id: &str) -> Result<Job> {
        Ok(self.load_job(account_id, job_id).await?.0)
    }

    async fn load_job(&self, account_id: &str, job_id: &str) -> Result<(Job, u64)> {
        let item = self
            .deps
            .store
            .get(Table::Accounts, &schema::job_key(account_id, job_id))
            .await?
            .ok_or_else(|| Error::NotFound("Job not found".into()))?;
        Ok((from_body(&item.body)?, item.version))
    }

    /// Saves a job's progress if no other runner advanced it meanwhile; `false` if one did.
    async fn save_job(&self, account_id: &str, job: &Job, version: u64) -> Result<bool> {
        let mut item = Item::new(schema::job_key(account_id, &job.id), to_body(job)?);
        item.version = version + 1;
        item.expires_at =
            Some(job.finished_at.unwrap_or(job.created_at) + schema::JOB_RETENTION_SECS);
        let mut tx = Txn::new();
        tx.push(
            Check::StateVersion,
            WriteOp::Put {
                table: Table::Accounts,
                item,
                cond: Cond::Version(version),
            },
        );
        match tx.commit(&*self.deps.store).await {
            Ok(()) => Ok(true),
            Err(TxnError::Failed(_)) => Ok(false),
            Err(TxnError::Store(e)) => Err(e),
        }
    }

    /// Runs one step of a job for up to `budget`: rescores pages of leads from the job's
    /// cursor, saving progress after each page, and finishes the job (folding its
    /// `leads.scored` events) when the last page is done. `None` when the job is unknown or
    /// another runner holds it.
    pub async fn run_step(
        &self,
        account_id: &str,
        job_id: &str,
        budget: std::time::Duration,
    ) -> Result<Option<Job>> {
        let started = std::time::Instant::now();
        let (mut job, mut version) = match self.load_job(account_id, job_id).await {
            Ok(x) => x,
            Err(Error::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        if job.status != JobStatus::Running {
            return Ok(Some(job));
        }
        let now_ms = self.deps.clock.now_ms();
        if job.lease_until_ms.is_some_and(|t| t > now_ms) {
            // Another runner is on it and continues it.
            return Ok(Some(job));
        }
        job.steps += 1;
        let margin = std::time::Duration::from_secs(15);
        let hold = budget.min(std::time::Duration::from_secs(3600)) + margin;
        job.lease_until_ms = Some(now_ms + hold.as_millis() as i64);
        if !self.save_job(account_id, &job, version).await? {
            return Ok(None);
        }
        version += 1;
        let rules = self.compiled_rules_of(account_id).await?;
        let group = job_group(&job.id);
        loop {
            let start = job.cursor.as_ref().map(|sk| Position {
                key: Key::new(schema::tenant_pk(account_id), sk.clone()),
                index: None,
            });
            let page = self
                .deps
                .store
                .query(&QueryReq {
                    table: Table::Leads,
                    index: None,
                    pk: schema::tenant_pk(account_id),
                    sk: SkCond::BeginsWith(schema::LEAD_PREFIX.into()),
                    start_after: start,
                    descending: false,
                    limit: RESCORE_PAGE,
                })
                .await?;
            let deadline = started + budget;
            let (done, changed) = self
                .rescore_page(account_id, &rules, &group, &page.items, deadline)
                .await?;
            job.processed += done as u64;
            job.changed += changed;
            let whole_page = done == page.items.len();
            if let Some(last) = page.items[..done].last() {
                job.cursor = Some(last.key.sk.clone());
            }
            match page.last {
                // The budget ran out part-way through the page: resume after the last lead done.
                _ if !whole_page => {}
                Some(p) => job.cursor = Some(p.key.sk),
                None => {
                    events::fold_group(
                        &self.deps,
                        account_id,
                        &group,
                        Some(EventKind::LeadsScored),
                    )
                    .await?;
                    job.status = JobStatus::Succeeded;
                    job.finished_at = Some(self.deps.clock.now_secs());
                    job.total = job.total.max(job.processed);
                }
            }
            let stop = job.status != JobStatus::Running || started.elapsed() >= budget;
            if stop {
                // Handing over: the next message may start at once.
                job.lease_until_ms = None;
            }
            if !self.save_job(account_id, &job, version).await? {
                return Ok(None);
            }
            version += 1;
            if stop {
                return Ok(Some(job));
            }
        }
    }

    /// Rescores the leads of one page; returns (leads examined, scores changed).
    async fn rescore_page(
        &self,
        account_id: &str,
        rules: &[CompiledRule],
        group: &str,
        items: &[Item],
        deadline: std::time::Instant,
    ) -> Result<(usize, u64)> {
        let mode = EventMode::Member(group);
        let mut changed = 0;
        for (i, item) in items.iter().enumerate() {
            let mut lead: Lead = from_body(&item.body)?;
            let score = score_of(rules, &lead);
            if (score - lead.score).abs() < 1e-9 {
                continue;
            }
            // Every lead before this one is done; stop here if the budget is spent (at least
            // one write per step, so a slow store still makes progress).
            if i > 0 && std::time::Instant::now() >= deadline {
                return Ok((i, changed));
            }
            // A changed score is written from the document just read, if no one changed the
            // lead since; otherwise the lead is reloaded and rescored.
            let old_score = lead.score;
            lead.score = score;
            let written = match self
                .score_txn(account_id, &lead, old_score, item.version, mode)
                .await?
                .commit(&*self.deps.store)
                .await
            {
                Ok(()) => true,
                Err(TxnError::Failed(_)) => self
                    .write_score(account_id, &LeadId::from_trusted(&lead.id), rules, mode)
                    .await?
                    .is_some(),
                Err(TxnError::Store(e)) => return Err(e),
            };
            changed += u64::from(written);
        }
        Ok((items.len(), changed))
    }

    /// Rescores every lead of the account (`POST /leads/score/batch`): a job run inline within
    /// the inline budget and continued by the worker if it does not finish there.
    pub async fn rescore_all(&self, t: &Tenant) -> Result<Job> {
        let job = self.start_rescore(t).await?;
        Ok(self.run_inline(&t.account_id, job).await)
    }

    /// Recomputes and stores one lead's score; `None` when it did not change.
    async fn write_score(
        &self,
        account_id: &str,
        id: &LeadId,
        rules: &[CompiledRule],
        mode: EventMode<'_>,
    ) -> Result<Option<f64>> {
        for _ in 0..10 {
            let (mut lead, version) = match load_lead(&self.deps, account_id, id).await {
                Ok(x) => x,
                Err(Error::NotFound(_)) => return Ok(None),
                Err(e) => return Err(e),
            };
            let score = score_of(rules, &lead);
            if (score - lead.score).abs() < 1e-9 {
                return Ok(None);
            }
            let old_score = lead.score;
            lead.score = score;
            match self
                .score_txn(account_id, &lead, old_score, version, mode)
                .await?
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
    async fn score_txn(
        &self,
        account_id: &str,
        lead: &Lead,
        old_score: f64,
        version: u64,
        mode: EventMode<'_>,
    ) -> Result<Txn> {
        let before = Lead {
            score: old_score,
            ..lead.clone()
        };
        let data = serde_json::json!({ "id": lead.id, "score": lead.score });
        let mut tx = Txn::new();
        tx.push(
            Check::LeadVersion,
            WriteOp::Put {
                table: Table::Leads,
                item: lead_item(self.deps.store.as_ref(), account_id, lead, version + 1)?,
                cond: Cond::Version(version),
            },
        )
        .push(
            Check::EventAbsent,
            events::mode_event_op(
                &self.deps,
                account_id,
                mode,
                EventKind::LeadScored,
                EventKind::LeadsScored,
                || Ok(data),
            )
            .await?,
        )
        .extend(
            Check::None,
            crate::services::analytics::counter_ops(account_id, Some(&before), Some(lead)),
        );
        Ok(tx)
    }

    /// Recomputes, stores and returns one lead's score. Records `lead.scored` every time,
    /// changed or not (the caller asked for a scoring).
    pub async fn rescore_one(&self, t: &Tenant, id: &LeadId) -> Result<f64> {
        let rules = self.compiled_rules(t).await?;
        if let Some(s) = self
            .write_score(&t.account_id, id, &rules, EventMode::Single)
            .await?
        {
            return Ok(s);
        }
        let score = load_lead(&self.deps, &t.account_id, id).await?.0.score;
        let event = events::event_op(
            &self.deps,
            &t.account_id,
            EventKind::LeadScored,
            serde_json::json!({ "id": id, "score": score }),
            None,
        )
        .await?;
        self.deps.store.transact(vec![event]).await?;
        Ok(score)
    }

    /// Each rule's value, weight and contribution for one lead.
    pub async fn explain_score(&self, t: &Tenant, id: &LeadId) -> Result<ScoreExplanation> {
        let lead = load_lead(&self.deps, &t.account_id, id).await?.0;
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
