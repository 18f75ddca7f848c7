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
    },
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

/// `KLOZEO_SIGNING_KEY` if set.
pub fn signing_key_from_env() -> Option<Vec<u8>> {
    var("KLOZEO_SIGNING_KEY").map(String::into_bytes)
}

impl Config {
    /// The configuration of a Lambda function: DynamoDB tables named by
    /// `KLOZEO_TABLE_PREFIX`, cursors signed with `KLOZEO_SIGNING_KEY`.
    pub fn lambda_from_env() -> Result<Config> {
        Ok(Config {
            store: StoreConfig::Dynamo {
                table_prefix: required("KLOZEO_TABLE_PREFIX")?,
            },
            signing_key: required("KLOZEO_SIGNING_KEY")?.into_bytes(),
            max_body_bytes: max_body_from_env()?,
            plans: plans_from_env()?,
        })
    }
}
