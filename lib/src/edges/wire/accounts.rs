//! Bodies of the account, API-key and analytics routes (shared by REST and MCP).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::account::{Account, PlanLimits, Scope};
use crate::services::accounts::{AccountOverview, ApiKeyInfo};

/// The body of `POST /register` and `POST /login`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct Credentials {
    /// The account's e-mail.
    pub email: String,
    /// At least 10 characters on registration.
    pub password: String,
}

/// The answer of `POST /register`: the account and its first API key, shown only here.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RegisterResponse {
    /// Account id.
    pub id: String,
    /// The e-mail, lower-cased.
    pub email: String,
    /// The plan the account is on.
    pub plan: String,
    /// The first API key (`sk_live_...`); it is never shown again.
    pub api_key: String,
}

/// The answer of `POST /login`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LoginResponse {
    /// A session token, accepted as `Authorization: Bearer` on the account routes.
    pub token: String,
    /// Unix seconds after which the token stops working.
    pub expires_at: i64,
}

/// A plan's limits as the account sees them (`null` means unlimited).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LimitsResponse {
    /// Most leads the account may store.
    pub max_leads: Option<u64>,
    /// Most requests per API key in the window.
    pub requests_per_window: Option<u32>,
    /// The rate-limit window in seconds.
    pub window_secs: u64,
    /// Most items in one batch request.
    pub max_batch: u32,
}

impl From<PlanLimits> for LimitsResponse {
    fn from(l: PlanLimits) -> Self {
        LimitsResponse {
            max_leads: l.max_leads,
            requests_per_window: l.requests_per_window,
            window_secs: l.window_secs,
            max_batch: l.max_batch,
        }
    }
}

/// What the account uses of its limits.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct UsageResponse {
    /// Leads stored.
    pub leads: u64,
    /// Requests counted in the current rate-limit window, over all keys.
    pub requests_in_window: u64,
}

/// The answer of `GET /account`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AccountResponse {
    /// Account id.
    pub id: String,
    /// The e-mail.
    pub email: String,
    /// The plan.
    pub plan: String,
    /// The plan's limits.
    pub limits: LimitsResponse,
    /// Current usage.
    pub usage: UsageResponse,
}

impl From<AccountOverview> for AccountResponse {
    fn from(o: AccountOverview) -> Self {
        let Account {
            id, email, plan, ..
        } = o.account;
        AccountResponse {
            id,
            email,
            plan,
            limits: o.limits.into(),
            usage: UsageResponse {
                leads: o.leads,
                requests_in_window: o.requests_in_window,
            },
        }
    }
}

/// The body of `POST /api-keys`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct ApiKeyInput {
    /// A label for the key.
    pub name: String,
    /// `read`, `write` or `admin` (the default).
    #[serde(default)]
    pub scope: Option<Scope>,
}

/// One key in `GET /api-keys` (never the key or its hash).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ApiKeyResponse {
    /// Key id (for `DELETE /api-keys/{id}`).
    pub id: String,
    /// The label.
    pub name: Option<String>,
    /// The first characters of the key.
    pub prefix: String,
    /// What the key may do.
    pub scope: Scope,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last request made with it (to the minute), or `null`.
    pub last_used_at: Option<i64>,
}

impl From<ApiKeyInfo> for ApiKeyResponse {
    fn from(k: ApiKeyInfo) -> Self {
        ApiKeyResponse {
            id: k.id,
            name: k.name,
            prefix: k.prefix,
            scope: k.scope,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
        }
    }
}

/// The answer of `GET /api-keys`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ApiKeysResponse {
    /// The account's keys, oldest first.
    pub api_keys: Vec<ApiKeyResponse>,
}

/// The answer of `POST /api-keys`: the key itself, shown only here.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CreatedApiKeyResponse {
    /// Key id.
    pub id: String,
    /// The label.
    pub name: Option<String>,
    /// What the key may do.
    pub scope: Scope,
    /// The raw key (`sk_live_...`); it is never shown again.
    pub key: String,
    /// The first characters of the key.
    pub prefix: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// Leads per status in `GET /stats`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[allow(missing_docs)]
pub struct ByStatus {
    pub new: u64,
    pub contacted: u64,
    pub qualified: u64,
    pub disqualified: u64,
    pub converted: u64,
}

/// Score figures in `GET /stats`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ScoreStatsResponse {
    /// Mean score, two decimals.
    pub average: f64,
    /// Leads scoring 70 or more.
    pub high: u64,
    /// Leads scoring 40 to below 70.
    pub medium: u64,
    /// Leads scoring below 40.
    pub low: u64,
}

/// The answer of `GET /stats`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StatsResponse {
    /// Leads stored.
    pub total: u64,
    /// Leads per status.
    pub by_status: ByStatus,
    /// Leads per source (case-insensitive; the spelling most leads use).
    pub by_source: std::collections::BTreeMap<String, u64>,
    /// Score figures.
    pub score: ScoreStatsResponse,
    /// Leads created since 00:00 UTC six days ago.
    pub created_last_7_days: u64,
    /// Leads created since 00:00 UTC twenty-nine days ago.
    pub created_last_30_days: u64,
    /// Leads with an e-mail.
    pub with_email: u64,
    /// Leads with a phone number.
    pub with_phone: u64,
}

impl From<crate::services::analytics::Stats> for StatsResponse {
    fn from(s: crate::services::analytics::Stats) -> Self {
        use crate::domain::lead::Status;
        let n = |st: Status| {
            s.by_status
                .iter()
                .find(|(x, _)| *x == st)
                .map_or(0, |(_, c)| *c)
        };
        StatsResponse {
            total: s.total,
            by_status: ByStatus {
                new: n(Status::New),
                contacted: n(Status::Contacted),
                qualified: n(Status::Qualified),
                disqualified: n(Status::Disqualified),
                converted: n(Status::Converted),
            },
            by_source: s.by_source.into_iter().map(|x| (x.name, x.count)).collect(),
            score: ScoreStatsResponse {
                average: s.score.average,
                high: s.score.high,
                medium: s.score.medium,
                low: s.score.low,
            },
            created_last_7_days: s.created_last_7_days,
            created_last_30_days: s.created_last_30_days,
            with_email: s.with_email,
            with_phone: s.with_phone,
        }
    }
}

/// A distinct name with its lead count.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct NameCountResponse {
    /// The spelling most leads use.
    pub name: String,
    /// Leads with the name (any spelling).
    pub count: u64,
}

impl From<crate::services::analytics::NameCount> for NameCountResponse {
    fn from(n: crate::services::analytics::NameCount) -> Self {
        NameCountResponse {
            name: n.name,
            count: n.count,
        }
    }
}

/// The answer of `GET /categories`, by count (most first), then name.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CategoriesResponse {
    /// Distinct categories.
    pub categories: Vec<NameCountResponse>,
}

/// The answer of `GET /cities`, by count (most first), then name.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CitiesResponse {
    /// Distinct cities.
    pub cities: Vec<NameCountResponse>,
}
