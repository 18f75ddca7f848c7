//! Import: many leads pushed through the same deduplication as `POST /leads/batch`, chunk by
//! chunk, with one outcome per row; or, as a dry run, the outcome each row would have without
//! writing anything.

use std::collections::{HashMap, HashSet};

use crate::domain::account::Tenant;
use crate::domain::dedup::{fold, normalize_email, normalize_phone};
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

/// Imports for one tenant. In a dry run it remembers the e-mails and source ids of earlier
/// rows, so a later row that repeats one is reported as the merge it would be.
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
    earlier: HashMap<(&'static str, String), usize>,
    in_flight: Option<InFlight>,
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
                .and_then(|(_, v)| v.clone())
        };
        let keys: Vec<(&'static str, String)> = [
            (
                "email",
                text(TextField::Email).and_then(|e| normalize_email(&e)),
            ),
            ("source_id", text(TextField::SourceId)),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
        let (kind, existing) = self.ingest.decide(&self.tenant, c).await?;
        let outcome = match kind {
            PushKind::Merged { matched } => RowOutcome::Merged {
                into: existing.unwrap_or_default(),
                tier: matched.tier,
            },
            // Not in the store, but maybe an earlier row of this import would have created it.
            _ if keys.iter().any(|k| self.earlier.contains_key(k)) => {
                let (k, n) = keys
                    .iter()
                    .find_map(|k| self.earlier.get(k).map(|n| (k.0, *n)))
                    .unwrap_or(("email", 0));
                RowOutcome::Merged {
                    into: format!("row {n}"),
                    tier: k,
                }
            }
            PushKind::Created {
                potential_duplicate_id: Some(similar_to),
                ..
            } => RowOutcome::Hinted {
                id: None,
                similar_to,
            },
            PushKind::Created { .. } => RowOutcome::Created { id: None },
        };
        if matches!(
            outcome,
            RowOutcome::Created { .. } | RowOutcome::Hinted { .. }
        ) {
            for k in keys {
                self.earlier.entry(k).or_insert(row);
            }
        }
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
