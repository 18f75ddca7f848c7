//! Import: many leads pushed through the same deduplication as `POST /leads/batch`, chunk by
//! chunk, with one outcome per row; or, as a dry run, the outcome each row would have without
//! writing anything.

use std::collections::HashMap;

use crate::domain::account::Tenant;
use crate::domain::dedup::normalize_email;
use crate::domain::lead::{LeadChanges, TextField};
use crate::error::Result;
use crate::services::ingest::{IngestService, PushKind};

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
pub struct Import {
    ingest: IngestService,
    tenant: Tenant,
    dry_run: bool,
    rows_seen: usize,
    earlier: HashMap<(&'static str, String), usize>,
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
        }
    }

    /// Most rows per [`Import::chunk`]: the tenant's batch size.
    pub fn chunk_size(&self) -> usize {
        self.tenant.limits.max_batch.max(1) as usize
    }

    /// Imports the next rows (rows that failed to parse come in as errors and are reported
    /// as rejected at their place).
    pub async fn chunk(&mut self, rows: Vec<Result<LeadChanges>>) -> Result<Vec<RowOutcome>> {
        let out = if self.dry_run {
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
            out
        } else {
            self.ingest
                .batch_create(&self.tenant, rows)
                .await?
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
        };
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
