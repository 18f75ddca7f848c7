//! The composition root: builds the ports once per process and wires the services.

use std::path::Path;
use std::sync::Arc;

use crate::adapters::dynamodb::DynamoStore;
use crate::adapters::sqlite::SqliteStore;
use crate::config::{Config, StoreConfig};
use crate::domain::cursor::CursorKey;
use crate::error::{Error, Result};
use crate::ports::{Clock, IdSource, Store, SystemClock, UuidIds};
use crate::services::Deps;
use crate::services::accounts::AccountService;
use crate::services::leads::LeadService;
use crate::services::limits::LimitService;

/// The composed application: every service over one set of ports.
#[derive(Clone)]
pub struct App {
    /// Leads use cases.
    pub leads: LeadService,
    /// Accounts and API keys.
    pub accounts: AccountService,
    /// Rate limits and idempotency keys.
    pub limits: LimitService,
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

    /// Wires the services over explicit ports (tests substitute the clock).
    pub fn with_parts(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdSource>,
        config: &Config,
    ) -> Result<App> {
        let deps = Deps {
            store,
            clock,
            ids,
            cursor_key: CursorKey::new(&config.signing_key)?,
        };
        Ok(App {
            leads: LeadService::new(deps.clone()),
            accounts: AccountService::new(deps.clone(), config.plans.clone()),
            limits: LimitService::new(deps.clone()),
            max_body_bytes: config.max_body_bytes,
            deps,
        })
    }

    /// Builds the store named by the configuration and wires the services.
    pub async fn build(config: &Config) -> Result<App> {
        let store: Arc<dyn Store> = match &config.store {
            StoreConfig::Embedded { data_dir } => Arc::new(SqliteStore::open(data_dir)?),
            StoreConfig::Dynamo { table_prefix } => Arc::new(dynamo_store(table_prefix).await),
        };
        Self::with_store(store, config)
    }
}

/// The shared AWS SDK configuration type, re-exported so callers need no AWS crate.
pub type SdkConfig = aws_config::SdkConfig;

/// The AWS configuration from the standard chain (environment, profile, instance role). It
/// honours `AWS_ENDPOINT_URL`, so emulators need no special code. Built once per process.
pub async fn sdk_config() -> SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// The AWS configuration for an explicit endpoint (tests against an emulator).
pub async fn sdk_config_for_endpoint(endpoint: &str) -> SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .load()
        .await
}

/// A DynamoDB client from a shared configuration.
pub fn dynamo_client(sdk: &SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(sdk)
}

/// The DynamoDB store with a client built once from the standard AWS configuration chain.
pub async fn dynamo_store(table_prefix: &str) -> DynamoStore {
    DynamoStore::new(dynamo_client(&sdk_config().await), table_prefix)
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
