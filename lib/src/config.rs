//! Typed configuration, read from the environment in one place. Missing or malformed settings
//! fail fast with a message that names the variable.

use std::path::PathBuf;

use crate::domain::account::Plans;
use crate::error::{Error, Result};

/// Default largest request body (1 MiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// Which store backs the process.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreConfig {
    /// The embedded SQLite store under a data directory.
    Embedded {
        /// Where the database lives.
        data_dir: PathBuf,
    },
    /// DynamoDB (real, or an emulator through `AWS_ENDPOINT_URL`).
    Dynamo {
        /// Prefix of every table name, e.g. `klozeo-prod-`.
        table_prefix: String,
        /// The root certificates the AWS SDK trusts.
        tls_roots: TlsRoots,
    },
}

/// Which root certificates the AWS SDK's HTTPS client trusts (`KLOZEO_TLS_ROOTS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsRoots {
    /// The operating system's certificate store, read at start-up (`system`). Works with any
    /// endpoint the machine trusts, such as a TLS-terminating proxy in front of an emulator.
    System,
    /// Only the Amazon Trust Services roots compiled into the binary (`aws`). Every AWS service
    /// endpoint chains to one of them, and nothing is read from disk, which takes ~5 ms off a
    /// Lambda cold start (lib/docs/cold-start.md).
    Aws,
}

/// `KLOZEO_TLS_ROOTS` (`system` or `aws`), else `default`.
pub fn tls_roots_from_env(default: TlsRoots) -> Result<TlsRoots> {
    parse_tls_roots(var("KLOZEO_TLS_ROOTS").as_deref(), default)
}

fn parse_tls_roots(value: Option<&str>, default: TlsRoots) -> Result<TlsRoots> {
    match value.map(str::trim) {
        None => Ok(default),
        Some(v) if v.eq_ignore_ascii_case("system") => Ok(TlsRoots::System),
        Some(v) if v.eq_ignore_ascii_case("aws") => Ok(TlsRoots::Aws),
        Some(v) => Err(Error::invalid(format!(
            "configuration: KLOZEO_TLS_ROOTS='{v}' is not one of system, aws"
        ))),
    }
}

/// How long rescoring and other jobs run before handing over (`KLOZEO_JOB_INLINE_SECS`,
/// `KLOZEO_JOB_STEP_SECS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobsConfig {
    /// How long a request that starts a job (a rule change) works on it before answering; the
    /// rest is continued by the worker. Default 5 s, well inside API Gateway's 29 s.
    pub inline_budget: std::time::Duration,
    /// How long the worker works on a job per message before queueing a continuation.
    /// Default 20 s, inside the worker function's timeout.
    pub step_budget: std::time::Duration,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            inline_budget: std::time::Duration::from_secs(5),
            step_budget: std::time::Duration::from_secs(20),
        }
    }
}

/// Webhook delivery settings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WebhookConfig {
    /// Delays between attempts (`KLOZEO_WEBHOOK_RETRY_SCHEDULE`).
    pub retry: crate::domain::webhook::RetrySchedule,
    /// Whether loopback, private and link-local targets may be called
    /// (`KLOZEO_WEBHOOK_ALLOW_PRIVATE=1`, for local development and tests).
    pub allow_private: bool,
    /// Hosts that may be called over plain http (`KLOZEO_WEBHOOK_HTTP_HOSTS`, comma-separated).
    pub http_hosts: Vec<String>,
}

fn secs_var(name: &str, default: std::time::Duration) -> Result<std::time::Duration> {
    match var(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(std::time::Duration::from_secs_f64)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "configuration: {name}='{v}' is not a number of seconds"
                ))
            }),
    }
}

/// The job settings from the environment.
pub fn jobs_from_env() -> Result<JobsConfig> {
    let d = JobsConfig::default();
    Ok(JobsConfig {
        inline_budget: secs_var("KLOZEO_JOB_INLINE_SECS", d.inline_budget)?,
        step_budget: secs_var("KLOZEO_JOB_STEP_SECS", d.step_budget)?,
    })
}

/// The webhook settings from the environment.
pub fn webhooks_from_env() -> Result<WebhookConfig> {
    let mut cfg = WebhookConfig {
        retry: match var("KLOZEO_WEBHOOK_RETRY_SCHEDULE") {
            Some(v) => crate::domain::webhook::RetrySchedule::parse(&v)?,
            None => Default::default(),
        },
        allow_private: var("KLOZEO_WEBHOOK_ALLOW_PRIVATE").is_some_and(|v| {
            matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes")
        }),
        http_hosts: var("KLOZEO_WEBHOOK_HTTP_HOSTS")
            .map(|v| {
                v.split(',')
                    .map(|h| h.trim().to_string())
                    .filter(|h| !h.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
    };
    // Local development calls receivers on this machine: with private targets allowed, plain
    // http to loopback names is too.
    if cfg.allow_private {
        for h in ["localhost", "127.0.0.1", "[::1]"] {
            if !cfg.http_hosts.iter().any(|x| x.eq_ignore_ascii_case(h)) {
                cfg.http_hosts.push(h.to_string());
            }
        }
    }
    Ok(cfg)
}

/// Account settings: who may register and on which plan (`KLOZEO_REGISTRATION`,
/// `KLOZEO_DEFAULT_PLAN`).
#[derive(Debug, Clone, PartialEq)]
pub struct AccountsConfig {
    /// Whether `POST /register` creates accounts (`KLOZEO_REGISTRATION=closed` turns it off).
    pub registration_open: bool,
    /// The plan of a registered account.
    pub default_plan: String,
    /// How long a login session lasts.
    pub session_ttl_secs: i64,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        AccountsConfig {
            registration_open: true,
            default_plan: "free".into(),
            session_ttl_secs: 24 * 3600,
        }
    }
}

/// Export settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportConfig {
    /// The S3 bucket `delivery=url` exports are written to (`KLOZEO_EXPORT_BUCKET`); without
    /// it, the embedded store's data directory (`klozeo serve`), or no `delivery=url` at all.
    pub bucket: Option<String>,
    /// How long a `delivery=url` link works (`KLOZEO_EXPORT_URL_TTL_SECS`, default 900).
    pub link_ttl_secs: u64,
    /// Largest inline export body (`KLOZEO_EXPORT_INLINE_LIMIT_BYTES`): set where a proxy
    /// buffers responses (API Gateway: 6 MB); a larger export answers 413 naming
    /// `delivery=url`. Unset: unlimited (streamed).
    pub inline_limit_bytes: Option<u64>,
}

impl Default for ExportConfig {
    fn default() -> Self {
        ExportConfig {
            bucket: None,
            link_ttl_secs: crate::services::export::DEFAULT_LINK_TTL_SECS,
            inline_limit_bytes: None,
        }
    }
}

/// The account settings from the environment; the default plan must be one of `plans`.
pub fn accounts_from_env(plans: &Plans) -> Result<AccountsConfig> {
    let mut cfg = AccountsConfig::default();
    match var("KLOZEO_REGISTRATION").map(|v| v.trim().to_ascii_lowercase()) {
        None => {}
        Some(v) if v == "open" => {}
        Some(v) if v == "closed" => cfg.registration_open = false,
        Some(v) => {
            return Err(Error::invalid(format!(
                "configuration: KLOZEO_REGISTRATION='{v}' is not one of open, closed"
            )));
        }
    }
    if let Some(p) = var("KLOZEO_DEFAULT_PLAN") {
        let p = p.trim().to_string();
        plans
            .get(&p)
            .map_err(|e| Error::invalid(format!("configuration: KLOZEO_DEFAULT_PLAN: {e}")))?;
        cfg.default_plan = p;
    }
    Ok(cfg)
}

/// The export settings from the environment.
pub fn exports_from_env() -> Result<ExportConfig> {
    let num = |name: &str| -> Result<Option<u64>> {
        var(name)
            .map(|v| {
                v.trim().parse::<u64>().map_err(|_| {
                    Error::invalid(format!("configuration: {name}='{v}' is not a whole number"))
                })
            })
            .transpose()
    };
    Ok(ExportConfig {
        bucket: var("KLOZEO_EXPORT_BUCKET"),
        link_ttl_secs: num("KLOZEO_EXPORT_URL_TTL_SECS")?
            .unwrap_or(crate::services::export::DEFAULT_LINK_TTL_SECS),
        inline_limit_bytes: num("KLOZEO_EXPORT_INLINE_LIMIT_BYTES")?,
    })
}

/// Everything a process needs to compose the application.
#[derive(Debug, Clone)]
pub struct Config {
    /// The store.
    pub store: StoreConfig,
    /// Secret that signs pagination cursors (shared by every instance).
    pub signing_key: Vec<u8>,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Plan definitions.
    pub plans: Plans,
    /// Background job settings.
    pub jobs: JobsConfig,
    /// Webhook delivery settings.
    pub webhooks: WebhookConfig,
    /// The SQS queue of jobs (`KLOZEO_JOBS_QUEUE_URL`); without it jobs queue in the store.
    pub jobs_queue_url: Option<String>,
    /// The SQS dead-letter queue (`KLOZEO_JOBS_DLQ_URL`).
    pub jobs_dlq_url: Option<String>,
    /// Registration and session settings.
    pub accounts: AccountsConfig,
    /// Export settings.
    pub exports: ExportConfig,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn required(name: &str) -> Result<String> {
    var(name).ok_or_else(|| Error::invalid(format!("configuration: {name} must be set")))
}

/// `KLOZEO_MAX_BODY_BYTES`, or the default.
pub fn max_body_from_env() -> Result<usize> {
    match var("KLOZEO_MAX_BODY_BYTES") {
        None => Ok(DEFAULT_MAX_BODY_BYTES),
        Some(v) => v.trim().parse().map_err(|_| {
            Error::invalid(format!(
                "configuration: KLOZEO_MAX_BODY_BYTES='{v}' is not a byte count"
            ))
        }),
    }
}

/// `KLOZEO_PLANS_FILE` (a JSON plans document), or the built-in plans.
pub fn plans_from_env() -> Result<Plans> {
    match var("KLOZEO_PLANS_FILE") {
        None => Ok(Plans::builtin()),
        Some(path) => {
            let text = std::fs::read_to_string(&path).map_err(|e| {
                Error::invalid(format!("configuration: KLOZEO_PLANS_FILE={path}: {e}"))
            })?;
            Plans::from_json(&text)
        }
    }
}

/// The most verbose level logged: `RUST_LOG` (one level: `error`, `warn`, `info`, `debug` or
/// `trace`), else `AWS_LAMBDA_LOG_LEVEL` (what Lambda sets from the function's
/// `ApplicationLogLevel`; its `FATAL` is `error`), else `info`.
pub fn log_level_from_env() -> Result<tracing::level_filters::LevelFilter> {
    parse_log_level(
        var("RUST_LOG").as_deref(),
        var("AWS_LAMBDA_LOG_LEVEL").as_deref(),
    )
}

fn parse_log_level(
    rust_log: Option<&str>,
    lambda_level: Option<&str>,
) -> Result<tracing::level_filters::LevelFilter> {
    use tracing::level_filters::LevelFilter;
    let parse = |name: &str, v: &str| -> Result<LevelFilter> {
        match v.trim().to_ascii_lowercase().as_str() {
            "off" => Ok(LevelFilter::OFF),
            "fatal" | "error" => Ok(LevelFilter::ERROR),
            "warn" => Ok(LevelFilter::WARN),
            "info" => Ok(LevelFilter::INFO),
            "debug" => Ok(LevelFilter::DEBUG),
            "trace" => Ok(LevelFilter::TRACE),
            _ => Err(Error::invalid(format!(
                "configuration: {name}='{v}' is not one of error, warn, info, debug, trace"
            ))),
        }
    };
    match (rust_log, lambda_level) {
        (Some(v), _) => parse("RUST_LOG", v),
        (None, Some(v)) => parse("AWS_LAMBDA_LOG_LEVEL", v),
        (None, None) => Ok(LevelFilter::INFO),
    }
}

/// Settings of the MCP endpoint (`/mcp`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpConfig {
    /// `Host` values accepted (`KLOZEO_MCP_ALLOWED_HOSTS`, comma-separated, `host` or
    /// `host:port`); empty accepts any host (`*`). Default: loopback names only, which
    /// protects `klozeo serve` from DNS rebinding.
    pub allowed_hosts: Vec<String>,
    /// Browser `Origin` values accepted (`KLOZEO_MCP_ALLOWED_ORIGINS`, comma-separated, with
    /// scheme, e.g. `https://app.example.com:443`); `*` accepts any. Default: only loopback
    /// origins; requests without `Origin` (every non-browser client) always pass.
    pub allowed_origins: Vec<String>,
    /// The public base URL of the server (`KLOZEO_PUBLIC_URL`, e.g. `https://mcp.example.com`),
    /// used in the `WWW-Authenticate` answer; without it the request's own host is used.
    pub public_url: Option<String>,
}

impl Default for McpConfig {
    fn default() -> Self {
        McpConfig {
            allowed_hosts: ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec(),
            allowed_origins: ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"]
                .map(String::from)
                .to_vec(),
            public_url: None,
        }
    }
}

impl McpConfig {
    /// The defaults of a public endpoint (the Lambda Function URL): any `Host`, since the URL
    /// is only known after deploy and DNS rebinding needs a browser on a private network;
    /// browser Origins are still checked.
    pub fn public_endpoint() -> McpConfig {
        McpConfig {
            allowed_hosts: Vec::new(),
            ..McpConfig::default()
        }
    }
}

fn list_var(name: &str) -> Option<Vec<String>> {
    var(name).map(|v| {
        if v.trim() == "*" {
            return Vec::new();
        }
        v.split(',')
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .collect()
    })
}

/// The MCP endpoint settings from the environment over `d`; see [`McpConfig`].
pub fn mcp_from_env(d: McpConfig) -> McpConfig {
    McpConfig {
        allowed_hosts: list_var("KLOZEO_MCP_ALLOWED_HOSTS").unwrap_or(d.allowed_hosts),
        allowed_origins: list_var("KLOZEO_MCP_ALLOWED_ORIGINS").unwrap_or(d.allowed_origins),
        public_url: var("KLOZEO_PUBLIC_URL").map(|u| u.trim().trim_end_matches('/').to_string()),
    }
}

/// `KLOZEO_PUBLIC_URL` (the server's public base URL: OAuth issuer and resource), without a
/// trailing slash, if set.
pub fn public_url_from_env() -> Option<String> {
    var("KLOZEO_PUBLIC_URL").map(|u| u.trim().trim_end_matches('/').to_string())
}

/// `KLOZEO_SIGNING_KEY` if set.
pub fn signing_key_from_env() -> Option<Vec<u8>> {
    var("KLOZEO_SIGNING_KEY").map(String::into_bytes)
}

impl Config {
    /// The configuration of a Lambda function: DynamoDB tables named by
    /// `KLOZEO_TABLE_PREFIX`, cursors signed with `KLOZEO_SIGNING_KEY`, the compiled-in AWS
    /// roots unless `KLOZEO_TLS_ROOTS` says otherwise.
    pub fn lambda_from_env() -> Result<Config> {
        let plans = plans_from_env()?;
        Ok(Config {
            accounts: accounts_from_env(&plans)?,
            store: StoreConfig::Dynamo {
                table_prefix: required("KLOZEO_TABLE_PREFIX")?,
                tls_roots: tls_roots_from_env(TlsRoots::Aws)?,
            },
            signing_key: required("KLOZEO_SIGNING_KEY")?.into_bytes(),
            max_body_bytes: max_body_from_env()?,
            plans,
            jobs: jobs_from_env()?,
            webhooks: webhooks_from_env()?,
            jobs_queue_url: var("KLOZEO_JOBS_QUEUE_URL"),
            jobs_dlq_url: var("KLOZEO_JOBS_DLQ_URL"),
            exports: exports_from_env()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::level_filters::LevelFilter;

    #[test]
    fn tls_roots_setting() {
        assert_eq!(parse_tls_roots(None, TlsRoots::Aws).unwrap(), TlsRoots::Aws);
        assert_eq!(
            parse_tls_roots(Some(" System "), TlsRoots::Aws).unwrap(),
            TlsRoots::System
        );
        assert_eq!(
            parse_tls_roots(Some("aws"), TlsRoots::System).unwrap(),
            TlsRoots::Aws
        );
        let err = parse_tls_roots(Some("webpki"), TlsRoots::Aws).unwrap_err();
        assert!(
            err.to_string().contains("KLOZEO_TLS_ROOTS='webpki'"),
            "{err}"
        );
    }

    #[test]
    fn log_level_setting() {
        assert_eq!(parse_log_level(None, None).unwrap(), LevelFilter::INFO);
        // Lambda's ApplicationLogLevel, including its FATAL.
        assert_eq!(
            parse_log_level(None, Some("DEBUG")).unwrap(),
            LevelFilter::DEBUG
        );
        assert_eq!(
            parse_log_level(None, Some("FATAL")).unwrap(),
            LevelFilter::ERROR
        );
        // RUST_LOG wins when both are set.
        assert_eq!(
            parse_log_level(Some("warn"), Some("TRACE")).unwrap(),
            LevelFilter::WARN
        );
        let err = parse_log_level(Some("klozeo=debug"), None).unwrap_err();
        assert!(err.to_string().contains("RUST_LOG='klozeo=debug'"), "{err}");
    }
}
