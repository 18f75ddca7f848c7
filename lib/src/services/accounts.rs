//! Accounts, API keys and login sessions: register, log in, create, authenticate, list, revoke.

use std::collections::HashMap;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde::{Deserialize, Serialize};

use crate::config::AccountsConfig;
use crate::domain::account::{
    Account, ApiKeyRecord, NewApiKey, PlanLimits, Plans, Scope, SessionRecord, Tenant,
    check_new_password, hash_key, looks_like_key, looks_like_session, normalize_account_email,
    raw_key_from_bytes, session_token_from_bytes,
};
use crate::error::{Code, Error, Result};
use crate::ports::{Cond, Item, Key, QueryReq, SkCond, Table, WriteOp};
use crate::schema;
use crate::services::limits::LimitService;
use crate::services::txn::{Check, Txn, TxnError};
use crate::services::{Deps, from_body, to_body};

/// Failed logins tolerated per e-mail and per client address within [`LOGIN_WINDOW_SECS`];
/// the next attempt is refused with 429 until the oldest failure leaves the window.
pub const MAX_LOGIN_FAILURES: usize = 5;
/// The login throttling window.
pub const LOGIN_WINDOW_SECS: i64 = 15 * 60;
/// How often a key's `last_used_at` is written at most (a write per request would double the
/// cost of every request).
const LAST_USED_RESOLUTION_SECS: i64 = 60;

/// The accounts use cases.
#[derive(Clone)]
pub struct AccountService {
    deps: Deps,
    plans: Plans,
    config: AccountsConfig,
    limits: LimitService,
    keys: std::sync::Arc<std::sync::Mutex<HashMap<String, VerifiedKey>>>,
}

/// A key found valid at an account revision ([`Tenant::account_rev`]), by the key's hash.
#[derive(Clone)]
struct VerifiedKey {
    record: ApiKeyRecord,
    /// The version of its item (for [`AccountService::touch_key`]).
    version: u64,
    /// The account's revision read before the key was (see [`AccountService::authenticate`]).
    account_rev: u64,
}

/// The account's revision ([`Tenant::account_rev`]) held by its stored item.
pub(crate) fn account_rev(account_item: &Item) -> u64 {
    account_item.counter.max(0) as u64
}

/// Verified keys kept; past this the cache starts over.
const VERIFIED_KEYS: usize = 10_000;

/// The write that moves an account's revision ([`Tenant::account_rev`]): in the transaction
/// of every change that cached rules or keys must see (a scoring rule written, a key revoked).
pub(crate) fn account_rev_bump(account_id: &str) -> WriteOp {
    WriteOp::Add {
        table: Table::Accounts,
        key: schema::account_key(account_id),
        delta: 1,
        max: None,
    }
}

/// What identifies a key in a listing (never the raw key or its hash).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ApiKeyInfo {
    /// Key id.
    pub id: String,
    /// First characters of the raw key.
    pub prefix: String,
    /// Optional label.
    pub name: Option<String>,
    /// What the key may do.
    pub scope: Scope,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last request made with it (to the minute).
    pub last_used_at: Option<i64>,
}

impl From<ApiKeyRecord> for ApiKeyInfo {
    fn from(r: ApiKeyRecord) -> Self {
        ApiKeyInfo {
            id: r.id,
            prefix: r.prefix,
            name: r.name,
            scope: r.scope,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
        }
    }
}

/// A login session: the raw token (shown once) and when it stops working.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// `kls_` followed by 64 hex characters.
    pub token: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// An account as its owner sees it: plan limits and current usage.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountOverview {
    /// The account.
    pub account: Account,
    /// Its plan's limits.
    pub limits: PlanLimits,
    /// Leads stored.
    pub leads: u64,
    /// Requests counted in the current rate-limit window, over all of the account's keys.
    pub requests_in_window: u64,
}

/// Recent failed logins of one e-mail or one client address.
#[derive(Serialize, Deserialize, Default)]
struct Failures {
    /// Unix seconds of each failure, oldest first.
    at: Vec<i64>,
}

fn failures_key(kind: &str, value: &str) -> Key {
    Key::new(format!("LOGINFAIL#{kind}#{value}"), "#")
}

fn session_key(token_hash: &str) -> Key {
    Key::new(format!("SESSION#{token_hash}"), "#")
}

fn argon2() -> argon2::Argon2<'static> {
    // argon2id v1.3, 19 MiB, 2 passes, 1 lane: the OWASP recommendation.
    argon2::Argon2::default()
}

fn hash_password(password: &str, salt: [u8; 16]) -> Result<String> {
    let salt = SaltString::encode_b64(&salt).map_err(Error::internal)?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(Error::internal)
}

fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| argon2().verify_password(password.as_bytes(), &h).is_ok())
}

fn invalid_login() -> Error {
    Error::Unauthenticated("Invalid e-mail or password".into())
}

impl AccountService {
    /// Builds the service.
    pub fn new(deps: Deps, plans: Plans, config: AccountsConfig) -> Self {
        AccountService {
            limits: LimitService::new(deps.clone()),
            deps,
            plans,
            config,
            keys: Default::default(),
        }
    }

    /// The plan definitions in force.
    pub fn plans(&self) -> &Plans {
        &self.plans
    }

    /// Creates an account with a first API key; the raw key is returned once and never stored.
    pub async fn create_account(&self, email: &str, plan: &str) -> Result<(Account, NewApiKey)> {
        self.insert_account(email, plan, None).await
    }

    async fn insert_account(
        &self,
        email: &str,
        plan: &str,
        password_hash: Option<String>,
    ) -> Result<(Account, NewApiKey)> {
        let email = normalize_account_email(email)?;
        self.plans.get(plan)?;
        let now_ms = self.deps.clock.now_ms();
        let account = Account {
            id: self.deps.ids.time_ordered(now_ms).to_string(),
            email: email.clone(),
            plan: plan.to_string(),
            created_at: now_ms.div_euclid(1000),
            password_hash,
        };
        let key = self.mint_key(&account.id, None, Scope::Admin);
        let mut tx = Txn::new();
        tx.push(
            Check::AccountAbsent,
            WriteOp::Put {
                table: Table::Accounts,
                item: Item::new(schema::account_key(&account.id), to_body(&account)?),
                cond: Cond::NotExists,
            },
        )
        .push(
            Check::AccountEmailFree,
            WriteOp::Put {
                table: Table::Accounts,
                item: Item::new(
                    schema::account_email_key(&email),
                    to_body(&serde_json::json!({ "account_id": account.id }))?,
                ),
                cond: Cond::NotExists,
            },
        )
        .extend(Check::KeyAbsent, self.key_writes(&key)?);
        match tx.commit(&*self.deps.store).await {
            Ok(()) => Ok((account, key)),
            Err(TxnError::Failed(Check::AccountEmailFree)) => Err(Error::Conflict {
                code: Code::Conflict,
                message: format!("an account with e-mail {email} already exists"),
            }),
            Err(e) => Err(e.into_error("a concurrent change was detected; please retry")),
        }
    }

    /// Self-service registration: an account on the operator's default plan, with a password
    /// (argon2id) and a first admin key. Refused (403) when the operator closed registration.
    pub async fn register(&self, email: &str, password: &str) -> Result<(Account, NewApiKey)> {
        if !self.config.registration_open {
            return Err(Error::Forbidden {
                code: Code::Forbidden,
                message: "Registration is closed on this server".into(),
            });
        }
        normalize_account_email(email)?;
        check_new_password(password)?;
        let password = password.to_string();
        let salt = self.deps.ids.secret_bytes();
        let phc = tokio::task::spawn_blocking(move || hash_password(&password, salt))
            .await
            .map_err(Error::internal)??;
        let plan = self.config.default_plan.clone();
        self.insert_account(email, &plan, Some(phc)).await
    }

    /// Logs in with e-mail and password and opens a session. An unknown e-mail and a wrong
    /// password give the same 401 after the same work (one argon2id run either way); more
    /// than [`MAX_LOGIN_FAILURES`] failures for the e-mail or for `client` within
    /// [`LOGIN_WINDOW_SECS`] answer 429 until the oldest failure ages out.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        client: Option<&str>,
    ) -> Result<Session> {
        // A malformed e-mail is throttled like any other so that it cannot probe the limiter.
        let email_norm = email.trim().to_lowercase();
        let mut throttles = vec![failures_key("e", &bounded(&email_norm))];
        if let Some(c) = client.filter(|c| !c.is_empty()) {
            throttles.push(failures_key("a", &bounded(c)));
        }
        let now = self.deps.clock.now_secs();
        for k in &throttles {
            self.check_throttle(k, now).await?;
        }
        let account = match normalize_account_email(email) {
            Ok(_) => self.find_by_email(email).await?,
            Err(_) => None,
        };
        let phc = account.as_ref().and_then(|a| a.password_hash.clone());
        let password = password.to_string();
        let salt = self.deps.ids.secret_bytes();
        // Without a stored hash the password is hashed anyway (one argon2id run, like a
        // verification), so an unknown e-mail answers after the same work as a wrong password.
        let matches = tokio::task::spawn_blocking(move || match phc {
            Some(phc) => verify_password(&password, &phc),
            None => {
                let _ = hash_password(&password, salt);
                false
            }
        })
        .await
        .map_err(Error::internal)?;
        let account = match account {
            Some(a) if matches && a.password_hash.is_some() => a,
            _ => {
                for k in &throttles {
                    self.record_failure(k).await?;
                }
                return Err(invalid_login());
            }
        };
        let (a, b) = (self.deps.ids.secret_bytes(), self.deps.ids.secret_bytes());
        let token = session_token_from_bytes(a, b);
        let now = self.deps.clock.now_secs();
        let record = SessionRecord {
            account_id: account.id,
            created_at: now,
            expires_at: now + self.config.session_ttl_secs,
        };
        let mut item = Item::new(session_key(&hash_key(&token)), to_body(&record)?);
        item.expires_at = Some(record.expires_at);
        self.deps
            .store
            .transact(vec![WriteOp::Put {
                table: Table::Accounts,
                item,
                cond: Cond::NotExists,
            }])
            .await?;
        Ok(Session {
            token,
            expires_at: record.expires_at,
        })
    }

    async fn check_throttle(&self, key: &Key, now: i64) -> Result<()> {
        let Some(item) = self.deps.store.get(Table::Accounts, key).await? else {
            return Ok(());
        };
        let f: Failures = from_body(&item.body).unwrap_or_default();
        let recent: Vec<i64> =
            f.at.into_iter()
                .filter(|t| *t > now - LOGIN_WINDOW_SECS)
                .collect();
        if recent.len() >= MAX_LOGIN_FAILURES {
            let oldest = recent[recent.len() - MAX_LOGIN_FAILURES];
            return Err(Error::RateLimited {
                retry_after_secs: (oldest + LOGIN_WINDOW_SECS - now).max(1) as u64,
            });
        }
        Ok(())
    }

    /// Appends a failure to the record at `key`, kept in the store so that every instance
    /// counts the same failures.
    async fn record_failure(&self, key: &Key) -> Result<()> {
        for attempt in 0..20 {
            let now = self.deps.clock.now_secs();
            let current = self.deps.store.get(Table::Accounts, key).await?;
            let (mut f, cond, version) = match &current {
                Some(i) => (
                    from_body::<Failures>(&i.body).unwrap_or_default(),
                    Cond::Version(i.version),
                    i.version + 1,
                ),
                None => (Failures::default(), Cond::NotExists, 1),
            };
            f.at.retain(|t| *t > now - LOGIN_WINDOW_SECS);
            f.at.push(now);
            // Only the newest failures can decide a refusal.
            let excess = f.at.len().saturating_sub(MAX_LOGIN_FAILURES + 1);
            f.at.drain(..excess);
            let mut item = Item::new(key.clone(), to_body(&f)?);
            item.version = version;
            item.expires_at = Some(now + LOGIN_WINDOW_SECS);
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
                Ok(()) => return Ok(()),
                Err(crate::ports::StoreError::ConditionFailed(_)) => {
                    crate::services::backoff(attempt).await
                }
                Err(crate::ports::StoreError::Other(e)) => return Err(e),
            }
        }
        Err(Error::conflict("too many concurrent logins; please retry"))
    }

    /// Resolves a presented session token to its tenant (full access to the account); an
    /// unknown or expired token is a 401.
    pub async fn authenticate_session(&self, token: &str) -> Result<Tenant> {
        let unknown = || Error::Unauthenticated("Invalid or expired session".into());
        let token = token.trim();
        if !looks_like_session(token) {
            return Err(unknown());
        }
        let hash = hash_key(token);
        let item = self
            .deps
            .store
            .get(Table::Accounts, &session_key(&hash))
            .await?
            .ok_or_else(unknown)?;
        let s: SessionRecord = from_body(&item.body)?;
        if s.expires_at <= self.deps.clock.now_secs() {
            return Err(unknown());
        }
        let (account, account_rev) = match self.account_and_rev(&s.account_id).await {
            Ok(a) => a,
            Err(Error::NotFound(_)) => return Err(unknown()),
            Err(e) => return Err(e),
        };
        let limits = self.plans.get(&account.plan)?.clone();
        Ok(Tenant {
            account_id: account.id,
            plan: account.plan,
            limits,
            key_id: format!("session-{}", &hash[..24]),
            scope: Scope::Admin,
            account_rev: Some(account_rev),
        })
    }

    /// Finds an account by its e-mail.
    pub async fn find_by_email(&self, email: &str) -> Result<Option<Account>> {
        let email = normalize_account_email(email)?;
        let Some(marker) = self
            .deps
            .store
            .get(Table::Accounts, &schema::account_email_key(&email))
            .await?
        else {
            return Ok(None);
        };
        let v: serde_json::Value = from_body(&marker.body)?;
        let id = v["account_id"].as_str().unwrap_or_default();
        self.get_account(id).await.map(Some)
    }

    /// Reads an account.
    pub async fn get_account(&self, id: &str) -> Result<Account> {
        Ok(self.account_and_rev(id).await?.0)
    }

    /// The tenant of the account with `email`, for operator commands that act as the account
    /// without an API key (`klozeo export`, `klozeo import`).
    pub async fn tenant_for_email(&self, email: &str) -> Result<Tenant> {
        let account = self
            .find_by_email(email)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no account with e-mail {email}")))?;
        let limits = self.plans.get(&account.plan)?.clone();
        Ok(Tenant {
            account_id: account.id,
            plan: account.plan,
            limits,
            key_id: "operator".into(),
            // The operator acts with the machine's own authority.
            scope: crate::domain::account::Scope::Admin,
            // An import runs for minutes: rules changed meanwhile apply to its later rows.
            account_rev: None,
        })
    }

    /// Reads an account, and its revision ([`Tenant::account_rev`]).
    async fn account_and_rev(&self, id: &str) -> Result<(Account, u64)> {
        let item = self
            .deps
            .store
            .get(Table::Accounts, &schema::account_key(id))
            .await?
            .ok_or_else(|| Error::NotFound("Account not found".into()))?;
        Ok((from_body(&item.body)?, account_rev(&item)))
    }

    /// The caller's account with its plan limits and current usage (read from counters).
    pub async fn overview(&self, t: &Tenant) -> Result<AccountOverview> {
        let account = self.get_account(&t.account_id).await?;
        let limits = self.plans.get(&account.plan)?.clone();
        let leads = self
            .deps
            .store
            .get(Table::Accounts, &schema::lead_counter_key(&t.account_id))
            .await?
            .map_or(0, |i| i.counter.max(0) as u64);
        let mut key_ids: Vec<String> = self
            .list_keys(&t.account_id)
            .await?
            .into_iter()
            .map(|k| k.id)
            .collect();
        if !key_ids.contains(&t.key_id) {
            key_ids.push(t.key_id.clone());
        }
        let requests_in_window = self
            .limits
            .requests_in_window(&key_ids, limits.window_secs)
            .await?;
        Ok(AccountOverview {
            account,
            limits,
            leads,
            requests_in_window,
        })
    }

    fn mint_key(&self, account_id: &str, name: Option<String>, scope: Scope) -> NewApiKey {
        let raw = raw_key_from_bytes(self.deps.ids.secret_bytes());
        let record = ApiKeyRecord {
            id: self.deps.ids.random().to_string(),
            account_id: account_id.to_string(),
            prefix: raw[..12].to_string(),
            hash: hash_key(&raw),
            name,
            created_at: self.deps.clock.now_secs(),
            scope,
            last_used_at: None,
        };
        NewApiKey { raw, record }
    }

    fn key_writes(&self, key: &NewApiKey) -> Result<Vec<WriteOp>> {
        let r = &key.record;
        Ok(vec![
            WriteOp::Put {
                table: Table::Accounts,
                item: Item::new(schema::api_key_key(&r.hash), to_body(r)?),
                cond: Cond::NotExists,
            },
            WriteOp::Put {
                table: Table::Accounts,
                item: Item::new(
                    schema::api_key_listing_key(&r.account_id, &r.id),
                    to_body(r)?,
                ),
                cond: Cond::NotExists,
            },
        ])
    }

    /// Adds another API key (full access) to an existing account.
    pub async fn create_key(&self, account_id: &str, name: Option<String>) -> Result<NewApiKey> {
        self.create_scoped_key(account_id, name, Scope::Admin).await
    }

    /// Adds another API key with `scope` to an existing account.
    pub async fn create_scoped_key(
        &self,
        account_id: &str,
        name: Option<String>,
        scope: Scope,
    ) -> Result<NewApiKey> {
        if let Some(n) = &name
            && n.chars().count() > 200
        {
            return Err(Error::invalid("name: at most 200 characters"));
        }
        self.get_account(account_id).await?;
        let key = self.mint_key(account_id, name, scope);
        let mut ops = vec![WriteOp::Check {
            table: Table::Accounts,
            key: schema::account_key(account_id),
            cond: Cond::Exists,
        }];
        ops.extend(self.key_writes(&key)?);
        self.deps.store.transact(ops).await?;
        Ok(key)
    }

    /// Lists an account's keys (ids and prefixes only), oldest first.
    pub async fn list_keys(&self, account_id: &str) -> Result<Vec<ApiKeyInfo>> {
        let items = self
            .deps
            .query_all(QueryReq {
                table: Table::Accounts,
                index: None,
                pk: schema::account_key(account_id).pk,
                sk: SkCond::BeginsWith(schema::API_KEY_LISTING_PREFIX.into()),
                start_after: None,
                descending: false,
                limit: 200,
            })
            .await?;
        let mut keys = items
            .iter()
            .map(|item| from_body::<ApiKeyRecord>(&item.body).map(ApiKeyInfo::from))
            .collect::<Result<Vec<_>>>()?;
        keys.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(keys)
    }

    /// Revokes one key of an account; another account's key id is a 404. The key answers
    /// 401 from the next request on, in every process: the revocation moves the account's
    /// revision, which every request reads before trusting a verified key.
    pub async fn revoke_key(&self, account_id: &str, key_id: &str) -> Result<()> {
        let listing = schema::api_key_listing_key(account_id, key_id);
        let item = self
            .deps
            .store
            .get(Table::Accounts, &listing)
            .await?
            .ok_or_else(|| Error::NotFound("API key not found".into()))?;
        let r: ApiKeyRecord = from_body(&item.body)?;
        self.deps
            .store
            .transact(vec![
                WriteOp::Delete {
                    table: Table::Accounts,
                    key: listing,
                    cond: Cond::Exists,
                },
                WriteOp::Delete {
                    table: Table::Accounts,
                    key: schema::api_key_key(&r.hash),
                    cond: Cond::Always,
                },
                account_rev_bump(account_id),
            ])
            .await
            .map_err(|e| match e {
                // Revoked concurrently: it is gone either way.
                crate::ports::StoreError::ConditionFailed(_) => {
                    Error::NotFound("API key not found".into())
                }
                crate::ports::StoreError::Other(e) => e,
            })
    }

    /// Resolves a presented raw key to its tenant; anything unknown is a 401.
    pub async fn authenticate(&self, raw: &str) -> Result<Tenant> {
        let unknown = || Error::Unauthenticated("Invalid API key".into());
        let raw = raw.trim();
        if !looks_like_key(raw) {
            return Err(unknown());
        }
        let hash = hash_key(raw);
        let cached = self.verified_keys()?.get(&hash).cloned();
        let (key, account, account_rev) = match cached {
            // A key verified at the revision still current is still valid: revoking it would
            // have moved the revision. One read (the account, needed anyway) instead of two.
            Some(k) => match self.account_and_rev(&k.record.account_id).await {
                Ok((account, rev)) if rev == k.account_rev => (k, account, rev),
                Ok(_) | Err(Error::NotFound(_)) => {
                    self.verified_keys()?.remove(&hash);
                    self.verify_key(&hash).await?.ok_or_else(unknown)?
                }
                Err(e) => return Err(e),
            },
            None => self.verify_key(&hash).await?.ok_or_else(unknown)?,
        };
        self.touch_key(&hash, &key).await;
        let limits = self.plans.get(&account.plan)?.clone();
        Ok(Tenant {
            account_id: account.id,
            plan: account.plan,
            limits,
            key_id: key.record.id,
            scope: key.record.scope,
            account_rev: Some(account_rev),
        })
    }

    fn verified_keys(&self) -> Result<std::sync::MutexGuard<'_, HashMap<String, VerifiedKey>>> {
        self.keys
            .lock()
            .map_err(|_| Error::internal("verified keys lock poisoned"))
    }

    /// Reads the key with `hash` and its account, and remembers the key as verified; `None`
    /// when either is gone. The key is read again after the account's revision, so a
    /// revocation that lands between the reads either hides the key or moves the revision
    /// past the one remembered.
    async fn verify_key(&self, hash: &str) -> Result<Option<(VerifiedKey, Account, u64)>> {
        let key = schema::api_key_key(hash);
        let Some(first) = self.deps.store.get(Table::Accounts, &key).await? else {
            return Ok(None);
        };
        let r: ApiKeyRecord = from_body(&first.body)?;
        let (account, rev) = match self.account_and_rev(&r.account_id).await {
            Ok(a) => a,
            Err(Error::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(item) = self.deps.store.get(Table::Accounts, &key).await? else {
            return Ok(None);
        };
        let verified = VerifiedKey {
            record: from_body(&item.body)?,
            version: item.version,
            account_rev: rev,
        };
        let mut keys = self.verified_keys()?;
        if keys.len() >= VERIFIED_KEYS {
            keys.clear();
        }
        keys.insert(hash.to_string(), verified.clone());
        Ok(Some((verified, account, rev)))
    }

    /// Records when a key was last used, at most once a minute. Both items must still exist,
    /// so a concurrent revocation is never undone; a failure only loses the timestamp (and
    /// the verified key, whose version it found out of date).
    async fn touch_key(&self, hash: &str, key: &VerifiedKey) {
        let (r, version) = (&key.record, key.version);
        let now = self.deps.clock.now_secs();
        if r.last_used_at
            .is_some_and(|t| now - t < LAST_USED_RESOLUTION_SECS)
        {
            return;
        }
        let mut updated = r.clone();
        updated.last_used_at = Some(now);
        let Ok(body) = to_body(&updated) else { return };
        let mut by_hash = Item::new(schema::api_key_key(&r.hash), body.clone());
        by_hash.version = version + 1;
        let listing = Item::new(schema::api_key_listing_key(&r.account_id, &r.id), body);
        if let Err(e) = self
            .deps
            .store
            .transact(vec![
                WriteOp::Put {
                    table: Table::Accounts,
                    item: by_hash,
                    cond: Cond::Version(version),
                },
                WriteOp::Put {
                    table: Table::Accounts,
                    item: listing,
                    cond: Cond::Exists,
                },
            ])
            .await
        {
            tracing::debug!(error = %e, "last_used_at not recorded");
            if let Ok(mut keys) = self.keys.lock() {
                keys.remove(hash);
            }
            return;
        }
        if let Ok(mut keys) = self.keys.lock()
            && let Some(k) = keys.get_mut(hash)
            && k.version == version
        {
            k.record = updated;
            k.version = version + 1;
        }
    }

    /// The key item for a raw key, for tests that check only hashes are stored.
    pub fn stored_key_of(raw: &str) -> Key {
        schema::api_key_key(&hash_key(raw))
    }
}

/// Keeps a throttling key component short (DynamoDB's key size; an attacker's long e-mail).
fn bounded(v: &str) -> String {
    if v.len() <= 200 {
        v.to_string()
    } else {
        hash_key(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let phc = hash_password("correct horse battery", [3; 16]).unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(verify_password("correct horse battery", &phc));
        assert!(!verify_password("correct horse battery!", &phc));
        assert!(!verify_password("anything", "not a phc string"));
    }
}
