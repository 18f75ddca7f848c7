//! Pure domain: types and rules with no I/O, no AWS and no async runtime.

pub mod account;
pub mod cursor;
pub mod dedup;
pub mod event;
pub mod filter;
pub mod ids;
pub mod job;
pub mod lead;
pub mod note;
pub mod oauth;
pub mod patch;
pub mod query;
pub mod rule;
pub mod scoring;
pub mod search;
pub mod table;
pub mod webhook;
