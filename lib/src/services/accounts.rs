//! Accounts and API keys: create, authenticate, list, revoke.

use crate::domain::account::{
    Account, ApiKeyRecord, NewApiKey, Plans, Tenant, hash_key, looks_like_key,
    normalize_account_email, raw_key_from_bytes,
};
use crate::error::{Error, Result};
use crate::ports::{Cond, Item, Key, QueryReq, SkCond, Table, WriteOp};
use crate::schema;
use crate::services::txn::{Check, Txn, TxnError};
use crate::services::{Deps, from_body, to_body};

/// The accounts use cases.
#[derive(Clone)]
pub struct AccountService {
    deps: Deps,
    plans: Plans,
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
    /// Unix seconds.
    pub created_at: i64,
}

impl AccountService {
    /// Builds the service.
    pub fn new(deps: Deps, plans: Plans) -> Self {
        AccountService { deps, plans }
    }

    /// The plan definitions in force.
    pub fn plans(&self) -> &Plans {
        &self.plans
    }

    /// Creates an account with a first API key; the raw key is returned once and never stored.
    pub async fn create_account(&self, email: &str, plan: &str) -> Result<(Account, NewApiKey)> {
        let email = normalize_account_email(email)?;
        self.plans.get(plan)?;
        let now_ms = self.deps.clock.now_ms();
        let account = Account {
            id: self.deps.ids.time_ordered(now_ms).to_string(),
            email: email.clone(),
            plan: plan.to_string(),
            created_at: now_ms.div_euclid(1000),
        };
        let key = self.mint_key(&account.id, None);
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
                code: crate::error::Code::Conflict,
                message: format!("an account with e-mail {email} already exists"),
            }),
            Err(e) => Err(e.into_error("a concurrent change was detected; please retry")),
        }
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
        self.get_account_item(id).await
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
        })
    }

    async fn get_account_item(&self, id: &str) -> Result<Account> {
        let item = self
            .deps
            .store
            .get(Table::Accounts, &schema::account_key(id))
            .await?
            .ok_or_else(|| Error::NotFound("Account not found".into()))?;
        from_body(&item.body)
    }

    fn mint_key(&self, account_id: &str, name: Option<String>) -> NewApiKey {
        let raw = raw_key_from_bytes(self.deps.ids.secret_bytes());
        let record = ApiKeyRecord {
            id: self.deps.ids.random().to_string(),
            account_id: account_id.to_string(),
            prefix: raw[..12].to_string(),
            hash: hash_key(&raw),
            name,
            created_at: self.deps.clock.now_secs(),
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

    /// Adds another API key to an existing account.
    pub async fn create_key(&self, account_id: &str, name: Option<String>) -> Result<NewApiKey> {
        self.get_account(account_id).await?;
        let key = self.mint_key(account_id, name);
        let mut ops = vec![WriteOp::Check {
            table: Table::Accounts,
            key: schema::account_key(account_id),
            cond: Cond::Exists,
        }];
        ops.extend(self.key_writes(&key)?);
        self.deps.store.transact(ops).await?;
        Ok(key)
    }

    /// Lists an account's keys (ids and prefixes only).
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
        items
            .iter()
            .map(|item| {
                let r: ApiKeyRecord = from_body(&item.body)?;
                Ok(ApiKeyInfo {
                    id: r.id,
                    prefix: r.prefix,
                    name: r.name,
                    created_at: r.created_at,
                })
            })
            .collect()
    }

    /// Revokes one key of an account; another account's key id is a 404.
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
        let item = self
            .deps
            .store
            .get(Table::Accounts, &schema::api_key_key(&hash_key(raw)))
            .await?
            .ok_or_else(unknown)?;
        let r: ApiKeyRecord = from_body(&item.body)?;
        let account = match self.get_account(&r.account_id).await {
            Ok(a) => a,
            Err(Error::NotFound(_)) => return Err(unknown()),
            Err(e) => return Err(e),
        };
        let limits = self.plans.get(&account.plan)?.clone();
        Ok(Tenant {
            account_id: account.id,
            plan: account.plan,
            limits,
            key_id: r.id,
        })
    }

    /// The key item for a raw key, for tests that check only hashes are stored.
    pub fn stored_key_of(raw: &str) -> Key {
        schema::api_key_key(&hash_key(raw))
    }
}
