//! The composition root: builds the ports once per process and wires the services.

use std::path::Path;
use std::sync::Arc;

use crate::adapters::dynamodb::DynamoStore;
use crate::adapters::http_sender::HttpSender;
use crate::adapters::sqlite::SqliteStore;
use crate::adapters::sqs::SqsQueue;
use crate::adapters::store_queue::StoreQueue;
use crate::config::{Config, StoreConfig, TlsRoots};
use crate::domain::cursor::CursorKey;
use crate::error::{Error, Result};
use crate::ports::{Clock, IdSource, Store, SystemClock, UuidIds};
use crate::ports::{JobQueue, JobSource, WebhookSender};
use crate::services::Deps;
use crate::services::accounts::AccountService;
use crate::services::analytics::AnalyticsService;
use crate::services::attributes::AttributeService;
use crate::services::export::ExportService;
use crate::services::ingest::IngestService;
use crate::services::jobs::JobRunner;
use crate::services::leads::LeadService;
use crate::services::limits::LimitService;
use crate::services::notes::NoteService;
use crate::services::oauth::OAuthService;
use crate::services::scoring::ScoringService;
use crate::services::webhooks::WebhookService;

/// The composed application: every service over one set of ports.
#[derive(Clone)]
pub struct App {
    /// Reading and listing leads.
    pub leads: LeadService,
    /// Creating (with deduplication), updating and deleting leads, singly and in batches.
    pub ingest: IngestService,
    /// Notes on leads.
    pub notes: NoteService,
    /// Typed custom attributes of leads.
    pub attributes: AttributeService,
    /// Scoring rules and rescoring.
    pub scoring: ScoringService,
    /// Webhook subscriptions, dispatch and delivery.
    pub webhooks: WebhookService,
    /// The worker's side of the jobs queue.
    pub jobs: JobRunner,
    /// Where the in-process worker of `klozeo serve` receives jobs from (the queue in the
    /// store, or SQS when configured); Lambda functions get theirs from SQS events instead.
    pub job_source: Option<Arc<dyn JobSource>>,
    /// Accounts and API keys.
    pub accounts: AccountService,
    /// Exports of leads (inline, or to object storage behind a link).
    pub exports: ExportService,
    /// Largest inline export body, where a proxy buffers responses (`None`: streamed, any size).
    pub export_inline_limit: Option<u64>,
    /// Rate limits and idempotency keys.
    pub limits: LimitService,
    /// Statistics, categories and cities, from counters.
    pub analytics: AnalyticsService,
    /// OAuth 2.1 authorization of MCP clients (clients, codes, tokens).
    pub oauth: OAuthService,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// The ports, for edges that need them directly.
    pub deps: Deps,
}

impl App {
    /// Wires the services over the given store.
    pub fn with_store(store: Arc<dyn Store>, config: &Config) -> Result<App> {
        Self::with_parts(store, Arc::new(SystemClock), Arc::new(UuidIds), config)
    }

    /// Wires the services over explicit ports (tests substitute the clock), with the jobs
    /// queue kept in the store.
    pub fn with_parts(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdSource>,
        config: &Config,
    ) -> Result<App> {
        let queue = Arc::new(StoreQueue::new(store.clone(), clock.clone(), ids.clone()));
        let sender: Arc<dyn WebhookSender> =
            Arc::new(HttpSender::new(config.webhooks.allow_private)?);
        Self::compose(
            store,
            clock,
            ids,
            (queue.clone(), Some(queue)),
            sender,
            config,
        )
    }

    /// Wires the services over every port.
    pub fn compose(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdSource>,
        (queue, job_source): (Arc<dyn JobQueue>, Option<Arc<dyn JobSource>>),
        sender: Arc<dyn WebhookSender>,
        config: &Config,
    ) -> Result<App> {
        let deps = Deps {
            store,
            clock,
            ids,
            cursor_key: CursorKey::new(&config.signing_key)?,
            hooks: Arc::default(),
        };
        let scoring = ScoringService::new(deps.clone(), queue.clone(), config.jobs);
        let notes = NoteService::new(deps.clone());
        let ingest = IngestService::new(deps.clone(), scoring.clone(), notes.clone());
        let webhooks =
            WebhookService::new(deps.clone(), queue.clone(), sender, config.webhooks.clone());
        let leads = LeadService::new(deps.clone());
        // On one machine, `delivery=url` files live in the data directory; on AWS the
        // composition roots below add S3 when a bucket is configured.
        let objects: Option<Arc<dyn crate::ports::ObjectStore>> = match &config.store {
            StoreConfig::Embedded { data_dir } => {
                Some(Arc::new(crate::adapters::local_files::LocalFiles::new(
                    data_dir,
                    &config.signing_key,
                    config.exports.link_ttl_secs,
                )))
            }
            StoreConfig::Dynamo { .. } => None,
        };
        let exports = ExportService::new(
            deps.clone(),
            leads.clone(),
            objects,
            config.exports.link_ttl_secs,
        );
        Ok(App {
            leads,
            exports,
            export_inline_limit: config.exports.inline_limit_bytes,
            attributes: AttributeService::new(deps.clone(), ingest.clone()),
            jobs: JobRunner::new(webhooks.clone(), scoring.clone(), queue, config.jobs),
            webhooks,
            job_source,
            ingest,
            notes,
            scoring,
            accounts: AccountService::new(
                deps.clone(),
                config.plans.clone(),
                config.accounts.clone(),
            ),
            limits: LimitService::new(deps.clone()),
            analytics: AnalyticsService::new(deps.clone()),
            oauth: OAuthService::new(
                deps.clone(),
                config.plans.clone(),
                Arc::new(crate::adapters::metadata_fetch::HttpMetadataFetcher::new(
                    config.webhooks.allow_private,
                )),
                config.webhooks.http_hosts.clone(),
                crate::config::public_url_from_env(),
            ),
            max_body_bytes: config.max_body_bytes,
            deps,
        })
    }

    /// Builds the store (and, with `KLOZEO_JOBS_QUEUE_URL`, the SQS jobs queue) named by the
    /// configuration and wires the services.
    pub async fn build(config: &Config) -> Result<App> {
        let mut s3 = None;
        let (store, sqs): (Arc<dyn Store>, Option<SqsQueue>) = match &config.store {
            StoreConfig::Embedded { data_dir } => (Arc::new(SqliteStore::open(data_dir)?), None),
            StoreConfig::Dynamo {
                table_prefix,
                tls_roots,
            } => {
                let sdk = sdk_config(*tls_roots).await;
                s3 =
                    config.exports.bucket.as_ref().map(|b| {
                        Arc::new(s3_objects(&sdk, b)) as Arc<dyn crate::ports::ObjectStore>
                    });
                let store = DynamoStore::new(dynamo_client(&sdk), table_prefix);
                let sqs = config.jobs_queue_url.as_ref().map(|url| {
                    SqsQueue::new(
                        aws_sdk_sqs::Client::new(&sdk),
                        url.clone(),
                        config.jobs_dlq_url.clone(),
                    )
                });
                (Arc::new(store), sqs)
            }
        };
        let mut app = match sqs {
            None => Self::with_store(store, config)?,
            Some(q) => {
                let q = Arc::new(q);
                Self::on_system_clock(store, (q.clone(), Some(q)), config)?
            }
        };
        if let Some(objects) = s3 {
            app.exports = app.exports.with_objects(objects);
        }
        Ok(app)
    }
}

impl App {
    /// The application of a Lambda function: DynamoDB, and SQS for jobs when
    /// `KLOZEO_JOBS_QUEUE_URL` is set. Built without the embedded store, so the linker leaves
    /// SQLite out of the function packages. The function that delivers webhooks passes
    /// [`webhook_sender`]; the others pass [`no_webhook_sender`], so the HTTP client and its
    /// TLS roots are left out of their packages too.
    pub async fn build_lambda(config: &Config, sender: Arc<dyn WebhookSender>) -> Result<App> {
        let StoreConfig::Dynamo {
            table_prefix,
            tls_roots,
        } = &config.store
        else {
            return Err(Error::invalid("a Lambda function runs on DynamoDB"));
        };
        let sdk = sdk_config(*tls_roots).await;
        let store: Arc<dyn Store> = Arc::new(DynamoStore::new(dynamo_client(&sdk), table_prefix));
        let queue: Arc<dyn JobQueue> = match &config.jobs_queue_url {
            Some(url) => Arc::new(SqsQueue::new(
                aws_sdk_sqs::Client::new(&sdk),
                url.clone(),
                config.jobs_dlq_url.clone(),
            )),
            None => Arc::new(StoreQueue::new(
                store.clone(),
                Arc::new(SystemClock),
                Arc::new(UuidIds),
            )),
        };
        let mut app = Self::compose(
            store,
            Arc::new(SystemClock),
            Arc::new(UuidIds),
            (queue, None),
            sender,
            config,
        )?;
        if let Some(bucket) = &config.exports.bucket {
            app.exports = app.exports.with_objects(Arc::new(s3_objects(&sdk, bucket)));
        }
        Ok(app)
    }

    /// Wires the services over `store` and the jobs queue, with the real clock, ids and
    /// webhook sender.
    fn on_system_clock(
        store: Arc<dyn Store>,
        queue: (Arc<dyn JobQueue>, Option<Arc<dyn JobSource>>),
        config: &Config,
    ) -> Result<App> {
        let sender: Arc<dyn WebhookSender> =
            Arc::new(HttpSender::new(config.webhooks.allow_private)?);
        Self::compose(
            store,
            Arc::new(SystemClock),
            Arc::new(UuidIds),
            queue,
            sender,
            config,
        )
    }
}

/// The webhook sender of a process that delivers webhooks.
pub fn webhook_sender(config: &Config) -> Result<Arc<dyn WebhookSender>> {
    Ok(Arc::new(HttpSender::new(config.webhooks.allow_private)?))
}

/// The webhook sender of a process that never delivers (the API functions: deliveries are the
/// worker's). Were it ever called, the attempt fails and is retried, so nothing is lost.
pub fn no_webhook_sender() -> Arc<dyn WebhookSender> {
    Arc::new(NoSender)
}

struct NoSender;

#[async_trait::async_trait]
impl WebhookSender for NoSender {
    async fn post(&self, _req: crate::ports::Outgoing) -> crate::ports::Attempt {
        crate::ports::Attempt::NoAnswer {
            error: "this process does not deliver webhooks".into(),
        }
    }
}

/// The shared AWS SDK configuration type, re-exported so callers need no AWS crate.
pub type SdkConfig = aws_config::SdkConfig;

/// The Amazon Trust Services roots (Amazon Root CA 1–4 and Starfield Services Root CA G2, as
/// published at amazontrust.com/repository), for [`TlsRoots::Aws`].
const AWS_ROOTS_PEM: &[u8] = include_bytes!("../certs/aws-roots.pem");

/// The HTTPS client every AWS client of the process shares: rustls on ring, trusting `roots`.
/// Certificates are loaded when the first SDK client is built from it.
fn https_client(roots: TlsRoots) -> aws_sdk_dynamodb::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
    let trust = match roots {
        TlsRoots::System => TrustStore::default(),
        TlsRoots::Aws => TrustStore::empty().with_pem_certificate(AWS_ROOTS_PEM),
    };
    let ctx = TlsContext::builder().with_trust_store(trust).build();
    let builder = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring));
    match ctx {
        Ok(ctx) => builder.tls_context(ctx).build_https(),
        // Building a context from a trust store cannot fail today; if it ever does, the
        // defaults (system roots) are the safe fallback.
        Err(_) => builder.build_https(),
    }
}

/// The AWS configuration from the standard chain (environment, profile, instance role). It
/// honours `AWS_ENDPOINT_URL`, so emulators need no special code. Built once per process.
pub async fn sdk_config(roots: TlsRoots) -> SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(https_client(roots))
        .load()
        .await
}

/// The AWS configuration for an explicit endpoint (tests against an emulator).
pub async fn sdk_config_for_endpoint(endpoint: &str) -> SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(https_client(TlsRoots::System))
        .endpoint_url(endpoint)
        .load()
        .await
}

/// An SQS client from a shared configuration.
pub fn sqs_client(sdk: &SdkConfig) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(sdk)
}

/// Object storage for `delivery=url` exports in `bucket`, from a shared configuration. With an
/// endpoint override (an emulator) requests use path-style addressing.
pub fn s3_objects(sdk: &SdkConfig, bucket: &str) -> crate::adapters::s3::S3Objects {
    let conf = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(sdk.endpoint_url().is_some())
        .build();
    crate::adapters::s3::S3Objects::new(aws_sdk_s3::Client::from_conf(conf), bucket)
}

/// A DynamoDB client from a shared configuration.
pub fn dynamo_client(sdk: &SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(sdk)
}

/// The DynamoDB store with a client built once from the standard AWS configuration chain.
pub async fn dynamo_store(table_prefix: &str, roots: TlsRoots) -> DynamoStore {
    DynamoStore::new(dynamo_client(&sdk_config(roots).await), table_prefix)
}

/// Reads the cursor signing key kept in a data directory, creating it on first use.
pub fn local_signing_key(data_dir: &Path, ids: &dyn IdSource) -> Result<Vec<u8>> {
    let path = data_dir.join("signing.key");
    match std::fs::read(&path) {
        Ok(k) if k.len() >= 16 => Ok(k),
        _ => {
            std::fs::create_dir_all(data_dir).map_err(Error::internal)?;
            let key = format!(
                "{}{}",
                hex::encode(ids.secret_bytes()),
                hex::encode(ids.secret_bytes())
            );
            std::fs::write(&path, &key)
                .map_err(|e| Error::internal(format!("cannot write {}: {e}", path.display())))?;
            Ok(key.into_bytes())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The compiled-in roots are five well-formed certificates, and an SDK client trusting only
    /// them gets as far as connecting (the SDK parses the PEM when it builds the TLS connector
    /// and would panic on a malformed one).
    #[tokio::test]
    async fn aws_roots_are_usable_by_the_sdk() {
        let pem = std::str::from_utf8(AWS_ROOTS_PEM).expect("ASCII");
        assert_eq!(pem.matches("-----BEGIN CERTIFICATE-----").count(), 5);
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(https_client(TlsRoots::Aws))
            .endpoint_url("https://127.0.0.1:9")
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::for_tests())
            .load()
            .await;
        let err = dynamo_client(&sdk)
            .list_tables()
            .send()
            .await
            .expect_err("nothing listens on port 9");
        let text = format!("{:?}", aws_sdk_dynamodb::error::DisplayErrorContext(&err));
        assert!(
            text.contains("dispatch failure") || text.contains("onnect"),
            "expected a connection error, got {text}"
        );
    }
}
