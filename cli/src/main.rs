//! `klozeo`: run the whole product on one machine, and operate a deployment.
//!
//! ```text
//! klozeo serve [--listen ADDR] [--data-dir DIR] [--store embedded|dynamodb]
//! klozeo mcp [--data-dir DIR] [--store embedded|dynamodb]   (MCP over stdio, key in KLOZEO_API_KEY)
//! klozeo account create --email EMAIL [--plan PLAN]
//! klozeo key create|list|revoke --email EMAIL ...
//! klozeo dynamodb create-tables
//! klozeo sqs create-queues
//! ```

/// The process's allocator for Rust allocations (SQLite keeps the C library's). A batch of
/// 500 leads builds and frees tens of thousands of small keys and item copies, and glibc's
/// frees of them (chunk consolidation) were a fifth of a batch's CPU: with mimalloc a batch of
/// 500 costs 55-56 ms of CPU instead of 68-72, creates and reads no worse (benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod bulk;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use klozeo_core::app::{App, local_signing_key};
use klozeo_core::config::{self, Config, StoreConfig, TlsRoots};
use klozeo_core::edges::http::{API_PREFIX, Routes, service_with_client_addr};
use klozeo_core::ports::UuidIds;

#[derive(Parser)]
#[command(name = "klozeo", version, about = "Klozeo-compatible lead database")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve every API of the product in one process.
    Serve(ServeArgs),
    /// Speak MCP over stdin/stdout, as the account of the API key in KLOZEO_API_KEY.
    Mcp(McpArgs),
    /// Manage accounts.
    #[command(subcommand)]
    Account(AccountCmd),
    /// Manage API keys.
    #[command(subcommand)]
    Key(KeyCmd),
    /// DynamoDB operations.
    #[command(subcommand)]
    Dynamodb(DynamoCmd),
    /// SQS operations.
    #[command(subcommand)]
    Sqs(SqsCmd),
    /// Export an account's leads to a CSV, JSON or XLSX file.
    Export(ExportArgs),
    /// Import leads from a CSV or JSON file, with the API's deduplication.
    Import(ImportArgs),
}

#[derive(Args)]
struct ExportArgs {
    /// The account's e-mail.
    #[arg(long)]
    email: String,
    /// csv, json or xlsx.
    #[arg(long)]
    format: String,
    /// A filter as in the API (`and.eq.city.Paris`); repeatable.
    #[arg(long = "filter")]
    filters: Vec<String>,
    /// Sort field, as in the API.
    #[arg(long)]
    sort_by: Option<String>,
    /// ASC or DESC.
    #[arg(long)]
    sort_order: Option<String>,
    /// The file to write.
    #[arg(long)]
    output: PathBuf,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Args)]
struct ImportArgs {
    /// The account's e-mail.
    #[arg(long)]
    email: String,
    /// A .csv (headers name lead fields; other headers become attributes) or .json file.
    file: PathBuf,
    /// Report what each row would do, without writing anything.
    #[arg(long)]
    dry_run: bool,
    /// The `source` of rows that have none.
    #[arg(long)]
    source: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Subcommand)]
enum SqsCmd {
    /// Create the jobs queue and its dead-letter queue (idempotent) and print their URLs, for
    /// emulators; `klozeo serve --store dynamodb` uses them with KLOZEO_JOBS_QUEUE_URL.
    CreateQueues {
        /// Prefix of the queue names (`<prefix>jobs`, `<prefix>jobs-dlq`).
        #[arg(long, env = "KLOZEO_TABLE_PREFIX", default_value = "klozeo-local-")]
        prefix: String,
    },
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum StoreKind {
    /// The embedded store under --data-dir.
    Embedded,
    /// DynamoDB (AWS_ENDPOINT_URL selects an emulator).
    Dynamodb,
}

#[derive(Args, Clone)]
struct StoreArgs {
    /// Where the embedded store keeps its data.
    #[arg(long, env = "KLOZEO_DATA_DIR", default_value = ".klozeo")]
    data_dir: PathBuf,
    /// Which store to use.
    #[arg(long, value_enum, env = "KLOZEO_STORE", default_value = "embedded")]
    store: StoreKind,
    /// Prefix of the DynamoDB table names.
    #[arg(long, env = "KLOZEO_TABLE_PREFIX", default_value = "klozeo-local-")]
    table_prefix: String,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "KLOZEO_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Subcommand)]
enum AccountCmd {
    /// Create an account; its first API key is printed alone on the last line.
    Create {
        /// Contact e-mail (unique).
        #[arg(long)]
        email: String,
        /// Plan name (free, pro, enterprise, unlimited, or one from KLOZEO_PLANS_FILE).
        #[arg(long, env = "KLOZEO_DEFAULT_PLAN", default_value = "free")]
        plan: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand)]
enum KeyCmd {
    /// Create another API key for an account; printed alone on the last line.
    Create {
        /// The account's e-mail.
        #[arg(long)]
        email: String,
        /// Optional label.
        #[arg(long)]
        name: Option<String>,
        /// What the key may do: read (GET only), write (all but key and account
        /// management) or admin (everything).
        #[arg(long, default_value = "admin", value_parser = ["read", "write", "admin"])]
        scope: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List an account's API keys (ids and prefixes; raw keys are never stored).
    List {
        /// The account's e-mail.
        #[arg(long)]
        email: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke one API key.
    Revoke {
        /// The account's e-mail.
        #[arg(long)]
        email: String,
        /// The key id (from `klozeo key list`).
        #[arg(long)]
        id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand)]
enum DynamoCmd {
    /// Create every table and index (idempotent); for emulators and first deployments.
    CreateTables {
        /// Prefix of the table names.
        #[arg(long, env = "KLOZEO_TABLE_PREFIX", default_value = "klozeo-local-")]
        table_prefix: String,
    },
}

#[derive(Args)]
struct McpArgs {
    /// The API key the tools act with.
    #[arg(long, env = "KLOZEO_API_KEY", hide_env_values = true)]
    api_key: String,
    #[command(flatten)]
    store: StoreArgs,
}

/// `klozeo mcp`: stdout carries only MCP messages; logs go to stderr.
async fn mcp_stdio(args: McpArgs) -> Result<()> {
    let app = Arc::new(build_app(&args.store).await?);
    // Background work (webhook deliveries, long rescoring) runs here too, as under `serve`.
    let workers = klozeo_core::edges::worker::spawn(app.clone());
    let public_url = klozeo_core::config::mcp_from_env(Default::default()).public_url;
    let served =
        klozeo_core::edges::mcp::stdio::serve_stdio(app, args.api_key.trim(), public_url).await;
    workers.stop();
    Ok(served?)
}

/// E-mail of the account created on first start.
const DEV_EMAIL: &str = "dev@localhost.localdomain";

async fn build_app(s: &StoreArgs) -> Result<App> {
    let store = match s.store {
        StoreKind::Embedded => StoreConfig::Embedded {
            data_dir: s.data_dir.clone(),
        },
        StoreKind::Dynamodb => StoreConfig::Dynamo {
            table_prefix: s.table_prefix.clone(),
            tls_roots: config::tls_roots_from_env(TlsRoots::System)?,
        },
    };
    let signing_key = match config::signing_key_from_env() {
        Some(k) => k,
        None => local_signing_key(&s.data_dir, &UuidIds)?,
    };
    let cfg = Config {
        store,
        signing_key,
        max_body_bytes: config::max_body_from_env()?,
        plans: config::plans_from_env()?,
        jobs: config::jobs_from_env()?,
        webhooks: config::webhooks_from_env()?,
        jobs_queue_url: std::env::var("KLOZEO_JOBS_QUEUE_URL")
            .ok()
            .filter(|v| !v.is_empty()),
        jobs_dlq_url: std::env::var("KLOZEO_JOBS_DLQ_URL")
            .ok()
            .filter(|v| !v.is_empty()),
        accounts: config::accounts_from_env(&config::plans_from_env()?)?,
        exports: config::exports_from_env()?,
    };
    Ok(App::build(&cfg).await?)
}

async fn serve(args: ServeArgs) -> Result<()> {
    let app = Arc::new(build_app(&args.store).await?);
    if app.accounts.find_by_email(DEV_EMAIL).await?.is_none() {
        let (account, key) = app.accounts.create_account(DEV_EMAIL, "unlimited").await?;
        println!(
            "klozeo: created the development account {} (plan {})",
            account.email, account.plan
        );
        println!("klozeo: its API key, shown only this once: {}", key.raw);
    }
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    // Without KLOZEO_PUBLIC_URL the OAuth issuer is the address served.
    app.oauth
        .default_public_url(&format!("http://127.0.0.1:{}", addr.port()));
    println!(
        "klozeo: serving http://{addr}{API_PREFIX} (store: {})",
        match args.store.store {
            StoreKind::Embedded => format!("embedded, {}", args.store.data_dir.display()),
            StoreKind::Dynamodb => format!("dynamodb, tables {}*", args.store.table_prefix),
        }
    );
    // Webhook dispatch and the jobs queue run in this process, on the same store.
    let workers = klozeo_core::edges::worker::spawn(app.clone());
    let svc = service_with_client_addr(app, Routes::All);
    axum::serve(listener, svc)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    workers.stop();
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().cmd {
        Cmd::Serve(args) => serve(args).await,
        Cmd::Mcp(args) => mcp_stdio(args).await,
        Cmd::Account(AccountCmd::Create { email, plan, store }) => {
            let app = build_app(&store).await?;
            let (account, key) = app.accounts.create_account(&email, &plan).await?;
            println!(
                "account {} ({}, plan {})",
                account.id, account.email, account.plan
            );
            println!("{}", key.raw);
            Ok(())
        }
        Cmd::Key(KeyCmd::Create {
            email,
            name,
            scope,
            store,
        }) => {
            let app = build_app(&store).await?;
            let account = find(&app, &email).await?;
            let scope = klozeo_core::domain::account::Scope::parse(&scope)?;
            let key = app
                .accounts
                .create_scoped_key(&account.id, name, scope)
                .await?;
            println!("key {} for {}", key.record.id, account.email);
            println!("{}", key.raw);
            Ok(())
        }
        Cmd::Key(KeyCmd::List { email, store }) => {
            let app = build_app(&store).await?;
            let account = find(&app, &email).await?;
            for k in app.accounts.list_keys(&account.id).await? {
                println!(
                    "{}\t{}…\t{}\t{}\t{}",
                    k.id,
                    k.prefix,
                    k.created_at,
                    k.name.unwrap_or_default(),
                    k.scope.as_str()
                );
            }
            Ok(())
        }
        Cmd::Key(KeyCmd::Revoke { email, id, store }) => {
            let app = build_app(&store).await?;
            let account = find(&app, &email).await?;
            app.accounts.revoke_key(&account.id, &id).await?;
            println!("revoked key {id}");
            Ok(())
        }
        Cmd::Sqs(SqsCmd::CreateQueues { prefix }) => create_queues(&prefix).await,
        Cmd::Export(a) => {
            let app = build_app(&a.store).await?;
            bulk::export(
                &app,
                &a.email,
                &a.format,
                &a.filters,
                a.sort_by.as_deref(),
                a.sort_order.as_deref(),
                &a.output,
            )
            .await
        }
        Cmd::Import(a) => {
            let app = build_app(&a.store).await?;
            bulk::import(&app, &a.email, &a.file, a.dry_run, a.source).await
        }
        Cmd::Dynamodb(DynamoCmd::CreateTables { table_prefix }) => {
            let roots = config::tls_roots_from_env(TlsRoots::System)?;
            let store = klozeo_core::app::dynamo_store(&table_prefix, roots).await;
            let created = store.create_tables().await?;
            for t in &created {
                println!("created table {t}");
            }
            if created.is_empty() {
                println!("all tables already exist");
            }
            Ok(())
        }
    }
}

async fn create_queues(prefix: &str) -> Result<()> {
    let roots = config::tls_roots_from_env(TlsRoots::System)?;
    let sdk = klozeo_core::app::sdk_config(roots).await;
    let q =
        klozeo_core::adapters::sqs::SqsQueue::create(klozeo_core::app::sqs_client(&sdk), prefix)
            .await?;
    println!("KLOZEO_JOBS_QUEUE_URL={}", q.url());
    println!("KLOZEO_JOBS_DLQ_URL={}", q.dlq_url().unwrap_or_default());
    Ok(())
}

async fn find(app: &App, email: &str) -> Result<klozeo_core::domain::account::Account> {
    app.accounts
        .find_by_email(email)
        .await?
        .with_context(|| format!("no account with e-mail {email}"))
}
