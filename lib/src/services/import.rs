//! Import: many leads pushed through the same deduplication as `POST /leads/batch`, chunk by
//! chunk, with one outcome per row; or, as a dry run, the outcome each row would have without
//! writing anything.

use std::collections::{HashMap, HashSet};

use crate::domain::account::Tenant;
use crate::domain::dedup::{
    PhoneCandidate, best_phone_match, fold, normalize_email, normalize_name, normalize_phone,
};
use crate::domain::lead::{LeadChanges, TextField};
use crate::error::Result;
use crate::services::ingest::{IngestService, PushKind, PushOutcome, Sequenced};

/// Rows per import chunk. Larger than an API batch: a commit of many leads writes each
/// touched index page once (at 100,000 leads, chunks of 5,000 import about a quarter faster
/// than chunks of 1,000; lib/docs/benchmarks.md), and the plan's lead limit still holds
/// through the same counter as every create.
pub const CHUNK: usize = 5_000;

/// What happened (or, in a dry run, would happen) to one imported row.
#[derive(Debug, Clone, PartialEq)]
pub enum RowOutcome {
    /// A new lead (`id` is `None` in a dry run).
    Created {
        /// The new lead's id.
        id: Option<String>,
    },
    /// A new lead that resembles an existing one (same name and city).
    Hinted {
        /// The new lead's id (`None` in a dry run).
        id: Option<String>,
        /// The similar lead.
        similar_to: String,
    },
    /// Merged into an existing lead.
    Merged {
        /// The existing lead (in a dry run, possibly an earlier row of the same import,
        /// named `row N`).
        into: String,
        /// Which dedup tier matched (`email`, `source_id`, `phone_name`).
        tier: &'static str,
    },
    /// Refused; nothing was written for it.
    Rejected {
        /// Why.
        reason: String,
    },
}

/// Imports for one tenant. In a dry run it remembers the e-mails, source ids, phones and
/// names with cities of earlier rows, so a later row that repeats one is reported as the merge
/// (or the similar-lead hint) it would be.
///
/// A real import keeps two chunks in flight ([`Import::push`]): the next chunk is decided
/// while the previous one commits, and writes only after it (see
/// [`IngestService::batch_create_after`]). Two chunks that share a dedup key (an e-mail, a
/// source id, a phone, a name and city) run one after the other instead, because a lead the
/// first creates is found by a range read no condition guards.
pub struct Import {
    ingest: IngestService,
    tenant: Tenant,
    dry_run: bool,
    rows_seen: usize,
    /// Dry run: the lead (`row N` or an id) each e-mail and source id of earlier rows leads to.
    earlier: HashMap<(&'static str, String), String>,
    /// Dry run: the leads of earlier rows by phone, with their names.
    earlier_phones: HashMap<String, Vec<PhoneCandidate>>,
    /// Dry run: the first earlier row of each name and city.
    earlier_names: HashMap<String, String>,
    /// Dry run: what the dedup matches on, for each lead earlier rows created or merged into.
    earlier_leads: HashMap<String, Facts>,
    in_flight: Option<InFlight>,
}

/// What a dry run knows of a lead earlier rows created or merged into.
#[derive(Clone, Default)]
struct Facts {
    /// Normalised name (phone matching).
    name: String,
    /// Case-folded name (name + city matching).
    name_fold: String,
    city: Option<String>,
    phone: Option<String>,
}

/// The chunk being committed while the next one is decided.
struct InFlight {
    task: tokio::task::JoinHandle<Result<Vec<RowOutcome>>>,
    keys: HashSet<String>,
    /// Resolves `true` once the chunk has decided its rows.
    decided: tokio::sync::oneshot::Receiver<bool>,
    /// Resolves `true` once the chunk's writes are done, `false` if it failed.
    done: tokio::sync::oneshot::Receiver<bool>,
}

/// Resolves when the chunk before has passed a step (at once when there is none); never
/// when it failed instead, since the import stops and the chunk after must not write.
async fn passed(step: Option<tokio::sync::oneshot::Receiver<bool>>) {
    if let Some(step) = step
        && step.await != Ok(true)
    {
        std::future::pending::<()>().await;
    }
}

impl Import {
    /// Starts an import (a dry run when `dry_run`).
    pub fn new(ingest: IngestService, tenant: Tenant, dry_run: bool) -> Self {
        Import {
            ingest,
            tenant,
            dry_run,
            rows_seen: 0,
            earlier: HashMap::new(),
            earlier_phones: HashMap::new(),
            earlier_names: HashMap::new(),
            earlier_leads: HashMap::new(),
            in_flight: None,
        }
    }

    /// Most rows per chunk ([`CHUNK`]).
    pub fn chunk_size(&self) -> usize {
        CHUNK
    }

    /// Imports the next rows and waits for them (rows that failed to parse come in as errors
    /// and are reported as rejected at their place).
    pub async fn chunk(&mut self, rows: Vec<Result<LeadChanges>>) -> Result<Vec<RowOutcome>> {
        let mut out = self.push(rows).await?;
        out.extend(self.finish().await?);
        Ok(out)
    }

    /// Starts importing the next rows and answers the outcomes that are complete, in row
    /// order: in a real import those of the chunk pushed before (none for the first), in a
    /// dry run those of these rows. [`Import::finish`] answers the rest.
    pub async fn push(&mut self, rows: Vec<Result<LeadChanges>>) -> Result<Vec<RowOutcome>> {
        if self.dry_run {
            return self.check(rows).await;
        }
        let keys = dedup_keys(&rows);
        let mut ready = Vec::new();
        let before = match self.in_flight.take() {
            Some(prev) if prev.keys.is_disjoint(&keys) => Some(prev),
            Some(prev) => {
                ready = join_task(prev.task).await?;
                None
            }
            None => None,
        };
        let (decided_gate, done_gate, before) = match before {
            Some(prev) => (Some(prev.decided), Some(prev.done), Some(prev.task)),
            None => (None, None, None),
        };
        let (decided_tx, decided) = tokio::sync::oneshot::channel();
        let (done_tx, done) = tokio::sync::oneshot::channel();
        let order = Sequenced {
            earlier_decided: passed(decided_gate),
            earlier_written: passed(done_gate),
            decided: move || {
                let _ = decided_tx.send(true);
            },
        };
        let (ingest, tenant) = (self.ingest.clone(), self.tenant.clone());
        let task = tokio::spawn(async move {
            let r = ingest.batch_create_after(&tenant, rows, order).await;
            let _ = done_tx.send(r.is_ok());
            r.map(outcomes_of)
        });
        self.in_flight = Some(InFlight {
            task,
            keys,
            decided,
            done,
        });
        if let Some(task) = before {
            match join_task(task).await {
                Ok(out) => ready.extend(out),
                Err(e) => {
                    if let Some(next) = self.in_flight.take() {
                        next.task.abort();
                    }
                    return Err(e);
                }
            }
        }
        self.rows_seen += ready.len();
        Ok(ready)
    }

    /// Waits for the chunk still in flight and answers its outcomes.
    pub async fn finish(&mut self) -> Result<Vec<RowOutcome>> {
        match self.in_flight.take() {
            Some(prev) => {
                let out = join_task(prev.task).await?;
                self.rows_seen += out.len();
                Ok(out)
            }
            None => Ok(Vec::new()),
        }
    }

    /// A dry run's chunk: the outcome of each row without writing.
    async fn check(&mut self, rows: Vec<Result<LeadChanges>>) -> Result<Vec<RowOutcome>> {
        let mut out = Vec::with_capacity(rows.len());
        for (i, row) in rows.into_iter().enumerate() {
            let n = self.rows_seen + i + 1;
            out.push(match row {
                Ok(c) => self.decide(n, &c).await?,
                Err(e) => RowOutcome::Rejected {
                    reason: e.public_message(),
                },
            });
        }
        self.rows_seen += out.len();
        Ok(out)
    }

    async fn decide(&mut self, row: usize, c: &LeadChanges) -> Result<RowOutcome> {
        let text = |f: TextField| {
            c.text
                .iter()
                .find(|(g, _)| *g == f)
                .and_then(|(_, v)| v.as_deref())
        };
        let keys: Vec<(&'static str, String)> = [
            ("email", text(TextField::Email).and_then(normalize_email)),
            ("source_id", text(TextField::SourceId).map(str::to_string)),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
        let name = c.name.as_deref().unwrap_or_default();
        let phone = text(TextField::Phone).and_then(normalize_phone);
        let name_city =
            text(TextField::City).map(|city| format!("{}\u{1f}{}", fold(name), fold(city)));
        // What an earlier row of this import would have become, tier by tier as the dedup
        // looks: e-mail, source id, then phone with a similar name.
        let earlier = keys
            .iter()
            .find_map(|k| self.earlier.get(k).map(|to| (k.0, to.clone())))
            .or_else(|| {
                let candidates = self.earlier_phones.get(phone.as_deref()?)?;
                let (i, _) = best_phone_match(&normalize_name(name), candidates)?;
                Some(("phone_name", candidates[i].id.clone()))
            });
        let rank = |tier: &str| match tier {
            "email" => 0,
            "source_id" => 1,
            _ => 2,
        };
        let (kind, existing) = self.ingest.decide(&self.tenant, c).await?;
        let outcome = match (kind, earlier) {
            (PushKind::Merged { matched }, Some((tier, to))) if rank(tier) < rank(matched.tier) => {
                RowOutcome::Merged { into: to, tier }
            }
            (PushKind::Merged { matched }, _) => RowOutcome::Merged {
                into: existing.unwrap_or_default(),
                tier: matched.tier,
            },
            (_, Some((tier, to))) => RowOutcome::Merged { into: to, tier },
            (
                PushKind::Created {
                    potential_duplicate_id: Some(similar_to),
                    ..
                },
                None,
            ) => RowOutcome::Hinted {
                id: None,
                similar_to,
            },
            (PushKind::Created { .. }, None) => {
                match name_city.as_ref().and_then(|k| self.earlier_names.get(k)) {
                    Some(to) => RowOutcome::Hinted {
                        id: None,
                        similar_to: to.clone(),
                    },
                    None => RowOutcome::Created { id: None },
                }
            }
        };
        // Later rows find this row's lead (or the lead it merges into) by its keys. A merge
        // overwrites the lead's name, city and phone with the row's non-empty ones (last touch
        // wins), so the lead leaves the phone and name + city it was found under.
        let to = match &outcome {
            RowOutcome::Created { .. } | RowOutcome::Hinted { .. } => format!("row {row}"),
            RowOutcome::Merged { into, .. } => into.clone(),
            RowOutcome::Rejected { .. } => return Ok(outcome),
        };
        for k in keys {
            self.earlier.entry(k).or_insert_with(|| to.clone());
        }
        let before = self.earlier_leads.get(&to).cloned().unwrap_or_default();
        let now = Facts {
            name: normalize_name(name),
            name_fold: fold(name),
            city: text(TextField::City).map(fold).or(before.city.clone()),
            phone: phone.or(before.phone.clone()),
        };
        if let Some(p) = &before.phone
            && let Some(list) = self.earlier_phones.get_mut(p)
        {
            list.retain(|c| c.id != to);
        }
        if let Some(city) = &before.city {
            let k = format!("{}\u{1f}{city}", before.name_fold);
            if self.earlier_names.get(&k) == Some(&to) {
                self.earlier_names.remove(&k);
            }
        }
        if let Some(p) = &now.phone {
            self.earlier_phones
                .entry(p.clone())
                .or_default()
                .push(PhoneCandidate {
                    id: to.clone(),
                    name: now.name.clone(),
                });
        }
        if let Some(city) = &now.city {
            let k = format!("{}\u{1f}{city}", now.name_fold);
            self.earlier_names.entry(k).or_insert_with(|| to.clone());
        }
        self.earlier_leads.insert(to, now);
        Ok(outcome)
    }
}

async fn join_task(
    task: tokio::task::JoinHandle<Result<Vec<RowOutcome>>>,
) -> Result<Vec<RowOutcome>> {
    task.await
        .map_err(|e| crate::error::Error::internal(format!("import chunk: {e}")))?
}

/// The outcome of each row of a committed chunk.
fn outcomes_of(results: Vec<Result<PushOutcome>>) -> Vec<RowOutcome> {
    results
        .into_iter()
        .map(|r| match r {
            Ok(o) => {
                let id = o.lead.id;
                match o.kind {
                    PushKind::Created {
                        potential_duplicate_id: Some(similar_to),
                        ..
                    } => RowOutcome::Hinted {
                        id: Some(id),
                        similar_to,
                    },
                    PushKind::Created { .. } => RowOutcome::Created { id: Some(id) },
                    PushKind::Merged { matched } => RowOutcome::Merged {
                        into: id,
                        tier: matched.tier,
                    },
                }
            }
            Err(e) => RowOutcome::Rejected {
                reason: e.public_message(),
            },
        })
        .collect()
}

/// Every key by which a row's dedup can find another lead: its e-mail, source id, phone,
/// and name with city, normalised as the dedup lookups normalise them.
fn dedup_keys(rows: &[Result<LeadChanges>]) -> HashSet<String> {
    let mut keys = HashSet::new();
    for c in rows.iter().flatten() {
        let text = |f: TextField| {
            c.text
                .iter()
                .find(|(g, _)| *g == f)
                .and_then(|(_, v)| v.as_deref())
        };
        if let Some(e) = text(TextField::Email).and_then(normalize_email) {
            keys.insert(format!("e\u{1f}{e}"));
        }
        if let Some(s) = text(TextField::SourceId) {
            keys.insert(format!("s\u{1f}{s}"));
        }
        if let Some(p) = text(TextField::Phone).and_then(normalize_phone) {
            keys.insert(format!("p\u{1f}{p}"));
        }
        if let Some(city) = text(TextField::City) {
            let name = c.name.as_deref().unwrap_or_default();
            keys.insert(format!("n\u{1f}{}\u{1f}{}", fold(name), fold(city)));
        }
    }
    keys
}
