//! Request rate limits per API key and idempotency keys per account.
//!
//! Both keep their state in the accounts table, so every Lambda instance and every local process
//! sees the same counts. Both are decided before the request has any side effect.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use crate::domain::account::Tenant;
use crate::error::{Error, Result};
use crate::ports::{Cond, Item, Key, StoreError, Table, WriteOp};
use crate::services::{Deps, from_body, to_body};

/// Number of buckets a rate-limit window is divided into (10 s each for the 10-minute window).
const BUCKETS_PER_WINDOW: u64 = 60;
/// How long a request may hold its idempotency key before a retry may take over.
const IDEMPOTENCY_LEASE_SECS: i64 = 60;
/// How long a completed response is replayed.
pub const IDEMPOTENCY_TTL_SECS: i64 = 24 * 3600;
/// Longest accepted `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// Rate-limit and idempotency use cases.
#[derive(Clone)]
pub struct LimitService {
    deps: Deps,
}

/// The state of a key's window after an accepted request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateState {
    /// Requests allowed per window.
    pub limit: u32,
    /// Requests left in the window after this one.
    pub remaining: u32,
}

#[derive(Serialize, Deserialize, Default)]
struct Window {
    /// `(bucket start in unix seconds, requests)`, oldest first.
    b: Vec<(i64, u32)>,
}

/// A stored idempotency record.
#[derive(Serialize, Deserialize)]
struct IdemRecord {
    fp: String,
    /// Which attempt holds the key: after a claim whose answer was lost (a timeout after the
    /// store committed), the attempt recognises its own claim instead of locking itself out.
    #[serde(default)]
    claim: String,
    done: bool,
    started: i64,
    status: u16,
    content_type: String,
    body: String,
}

/// The outcome of presenting an idempotency key.
#[derive(Debug)]
pub enum IdemStart {
    /// First use: run the request, then call [`LimitService::idem_complete`].
    Fresh(IdemTicket),
    /// Seen before with the same request: answer this instead of running it again.
    Replay {
        /// Original status.
        status: u16,
        /// Original `Content-Type`.
        content_type: String,
        /// Original body.
        body: Vec<u8>,
    },
}

/// Proof that this request holds an idempotency key.
#[derive(Debug, Clone)]
pub struct IdemTicket {
    key: Key,
    fp: String,
    version: u64,
    started: i64,
}

fn rate_key(key_id: &str) -> Key {
    Key::new(format!("RL#{key_id}"), "#")
}

fn idem_key(account_id: &str, key: &str) -> Key {
    Key::new(format!("IDEM#{account_id}"), key.to_string())
}

impl LimitService {
    /// Builds the service.
    pub fn new(deps: Deps) -> Self {
        LimitService { deps }
    }

    /// Counts one request against the key's sliding window. `Ok(None)` when the plan has no
    /// limit; [`Error::RateLimited`] (with the seconds until a slot frees) when it is spent.
    pub async fn check_rate(&self, t: &Tenant) -> Result<Option<RateState>> {
        let Some(limit) = t.limits.requests_per_window else {
            return Ok(None);
        };
        let window = t.limits.window_secs.max(1) as i64;
        let bucket = (window / BUCKETS_PER_WINDOW as i64).max(1);
        let key = rate_key(&t.key_id);
        for _ in 0..8 {
            let now = self.deps.clock.now_secs();
            let current = self.deps.store.get(Table::Accounts, &key).await?;
            let (mut w, cond) = match &current {
                Some(item) => (
                    from_body::<Window>(&item.body).unwrap_or_default(),
                    Cond::Version(item.version),
                ),
                None => (Window::default(), Cond::NotExists),
            };
            w.b.retain(|(start, _)| start + bucket > now - window);
            let used: u32 = w.b.iter().map(|(_, n)| n).sum();
            if used >= limit {
                let oldest = w.b.first().map_or(now, |(s, _)| *s);
                let retry = (oldest + bucket + window - now).max(1) as u64;
                return Err(Error::RateLimited {
                    retry_after_secs: retry,
                });
            }
            let this = now - now.rem_euclid(bucket);
            match w.b.last_mut() {
                Some((s, n)) if *s == this => *n += 1,
                _ => w.b.push((this, 1)),
            }
            let mut item = Item::new(key.clone(), to_body(&w)?);
            item.version = current.as_ref().map_or(1, |i| i.version + 1);
            item.expires_at = Some(now + window + bucket);
            match self
                .deps
                .store
                .transact(vec![WriteOp::Put {
                    table: Table::Accounts,
                    item,
                    cond,
                }])
                .await
            {
                Ok(()) => {
                    return Ok(Some(RateState {
                        limit,
                        remaining: limit - used - 1,
                    }));
                }
                Err(StoreError::ConditionFailed(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Unavailable(
            "too many concurrent requests on this API key; please retry".into(),
        ))
    }

    /// Requests counted in the current window of `window_secs` over the keys `key_ids` (only
    /// plans with a request limit count requests).
    pub async fn requests_in_window(&self, key_ids: &[String], window_secs: u64) -> Result<u64> {
        let keys: Vec<Key> = key_ids.iter().map(|k| rate_key(k)).collect();
        let now = self.deps.clock.now_secs();
        let window = window_secs.max(1) as i64;
        let bucket = (window / BUCKETS_PER_WINDOW as i64).max(1);
        let mut total = 0u64;
        for chunk in keys.chunks(100) {
            for item in self.deps.store.batch_get(Table::Accounts, chunk).await? {
                let w = from_body::<Window>(&item.body).unwrap_or_default();
                total +=
                    w.b.iter()
                        .filter(|(start, _)| start + bucket > now - window)
                        .map(|(_, n)| u64::from(*n))
                        .sum::<u64>();
            }
        }
        Ok(total)
    }

    /// Claims an idempotency key for a request with fingerprint `fp`, or says how to answer.
    pub async fn idem_begin(&self, account_id: &str, raw_key: &str, fp: &str) -> Result<IdemStart> {
        let valid = !raw_key.is_empty()
            && raw_key.len() <= MAX_IDEMPOTENCY_KEY_LEN
            && raw_key.bytes().all(|b| (0x21..=0x7e).contains(&b));
        if !valid {
            return Err(Error::invalid(format!(
                "Idempotency-Key: must be 1-{MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"
            )));
        }
        let key = idem_key(account_id, raw_key);
        for _ in 0..4 {
            let now = self.deps.clock.now_secs();
            let existing = self.deps.store.get(Table::Accounts, &key).await?;
            let (cond, version) = match &existing {
                None => (Cond::NotExists, 1),
                Some(item) => {
                    let rec: IdemRecord = from_body(&item.body)?;
                    if rec.fp != fp {
                        return Err(Error::Conflict {
                            code: crate::error::Code::IdempotencyConflict,
                            message: "Idempotency-Key was already used with a different request"
                                .into(),
                        });
                    }
                    if rec.done {
                        return Ok(IdemStart::Replay {
                            status: rec.status,
                            content_type: rec.content_type,
                            body: B64.decode(rec.body).map_err(Error::internal)?,
                        });
                    }
                    if rec.started + IDEMPOTENCY_LEASE_SECS > now {
                        return Err(Error::Conflict {
                            code: crate::error::Code::IdempotencyConflict,
                            message: "a request with this Idempotency-Key is still in progress"
                                .into(),
                        });
                    }
                    // The first attempt died without finishing: this retry takes over.
                    (Cond::Version(item.version), item.version + 1)
                }
            };
            let claim = self.deps.ids.random().to_string();
            let rec = IdemRecord {
                fp: fp.to_string(),
                claim: claim.clone(),
                done: false,
                started: now,
                status: 0,
                content_type: String::new(),
                body: String::new(),
            };
            let mut item = Item::new(key.clone(), to_body(&rec)?);
            item.version = version;
            item.expires_at = Some(now + IDEMPOTENCY_TTL_SECS);
            match self
                .deps
                .store
                .transact(vec![WriteOp::Put {
                    table: Table::Accounts,
                    item,
                    cond,
                }])
                .await
            {
                Ok(()) => {
                    return Ok(IdemStart::Fresh(IdemTicket {
                        key,
                        fp: fp.to_string(),
                        version,
                        started: now,
                    }));
                }
                Err(StoreError::ConditionFailed(_)) => continue,
                Err(StoreError::Other(e @ Error::Unavailable(_))) => {
                    // The claim may have committed with its answer lost; if so it is ours,
                    // and giving up on it would lock the caller's retries out for the lease.
                    if self.holds_claim(&key, version, &claim).await {
                        return Ok(IdemStart::Fresh(IdemTicket {
                            key,
                            fp: fp.to_string(),
                            version,
                            started: now,
                        }));
                    }
                    return Err(e);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Conflict {
            code: crate::error::Code::IdempotencyConflict,
            message: "a request with this Idempotency-Key is still in progress".into(),
        })
    }

    /// Whether the idempotency record at `key` is the claim `claim` at `version`, reading
    /// through a few passing store failures.
    async fn holds_claim(&self, key: &Key, version: u64, claim: &str) -> bool {
        let mut delay = std::time::Duration::from_millis(5);
        for _ in 0..4 {
            match self.deps.store.get(Table::Accounts, key).await {
                Ok(Some(item)) => {
                    return item.version == version
                        && from_body::<IdemRecord>(&item.body).is_ok_and(|r| r.claim == claim);
                }
                Ok(None) => return false,
                Err(_) => {
                    tokio::time::sleep(delay).await;
                    delay *= 4;
                }
            }
        }
        false
    }

    /// Stores the response of a request that held an idempotency key, for replay.
    pub async fn idem_complete(
        &self,
        ticket: IdemTicket,
        status: u16,
        content_type: &str,
        body: &[u8],
    ) -> Result<()> {
        let rec = IdemRecord {
            fp: ticket.fp,
            claim: String::new(),
            done: true,
            started: ticket.started,
            status,
            content_type: content_type.to_string(),
            body: B64.encode(body),
        };
        let mut item = Item::new(ticket.key, to_body(&rec)?);
        item.version = ticket.version + 1;
        item.expires_at = Some(ticket.started + IDEMPOTENCY_TTL_SECS);
        self.deps
            .store
            .transact(vec![WriteOp::Put {
                table: Table::Accounts,
                item,
                cond: Cond::Version(ticket.version),
            }])
            .await
            .map_err(Error::from)
    }

    /// Releases an idempotency key after a failure that may be retried (a 5xx).
    ///
    /// A key left held locks the caller's retries out for [`IDEMPOTENCY_LEASE_SECS`], so a
    /// release that meets a passing store failure is tried again a few times. A version
    /// mismatch means the record moved on (completed, or taken over): nothing to release.
    pub async fn idem_abandon(&self, ticket: IdemTicket) -> Result<()> {
        let mut delay = std::time::Duration::from_millis(5);
        let mut attempt = 0;
        loop {
            let res = self
                .deps
                .store
                .transact(vec![WriteOp::Delete {
                    table: Table::Accounts,
                    key: ticket.key.clone(),
                    cond: Cond::Version(ticket.version),
                }])
                .await;
            match res {
                Ok(()) | Err(StoreError::ConditionFailed(_)) => return Ok(()),
                Err(e) if attempt >= 3 => return Err(e.into()),
                Err(_) => {
                    attempt += 1;
                    tokio::time::sleep(delay).await;
                    delay *= 4;
                }
            }
        }
    }
}
