//! Core of the Klozeo-compatible lead database.
//!
//! The modules follow the layers of `DESIGN.md`; each layer depends only on the ones above it in
//! this list:
//! - [`domain`]: pure types and rules (leads, accounts, plans, cursors, events). No I/O.
//! - [`ports`]: the traits the services need from the outside world (store, clock, ids).
//! - [`schema`]: the table and key design, written once above the store port so both backends run
//!   the same logic.
//! - [`services`]: the use cases (create a lead, list leads, authenticate a key, ...).
//! - [`adapters`]: implementations of the ports (embedded SQLite, DynamoDB).
//! - [`edges`]: protocol edges (the HTTP router shared by Lambda and `klozeo serve`).
//! - [`config`] and [`app`]: typed configuration and the composition root.

pub mod adapters;
pub mod app;
pub mod config;
pub mod domain;
pub mod edges;
pub mod error;
pub mod ports;
pub mod schema;
pub mod services;

pub use error::{Error, Result};
