//! An optional capability of a store: reading a tenant's leads in list order with the indexable
//! part of a filter applied by the store itself.
//!
//! The embedded store keeps leads in a table with typed columns and real indexes, so it can answer
//! "leads of this tenant, roughly matching these filters, in this sort order, after this lead"
//! directly. DynamoDB cannot, and does not offer it: the services then use the key-range planner.
//! What a filter, a sort and a cursor *mean* stays in the domain: the store returns a superset of
//! the matching leads, in exactly the order of [`crate::domain::query::compare`], and the service
//! decides each candidate with the one Rust filter evaluator.

use async_trait::async_trait;

use crate::domain::filter::FilterSet;
use crate::domain::query::{Sort, SortValue};
use crate::error::Error;

/// One read of candidate leads in list order.
#[derive(Debug, Clone, Copy)]
pub struct LeadScan<'a> {
    /// The tenant's partition of the leads table (`crate::schema::tenant_pk`).
    pub partition: &'a str,
    /// The request's filters. The store may use any `and` filter to skip leads that cannot
    /// match; it must never skip a lead that matches.
    pub filters: &'a FilterSet,
    /// The order: `sort.field.value(lead)` then lead id, missing values last in both
    /// directions, exactly as [`crate::domain::query::compare`] orders them.
    pub sort: &'a Sort,
    /// Start strictly after this (sort value, lead id) position.
    pub after: Option<(&'a SortValue, &'a str)>,
    /// Most leads to return.
    pub limit: u32,
}

/// The leads index capability (see the module documentation).
#[async_trait]
pub trait LeadIndex: Send + Sync {
    /// The stored bodies of up to `limit` leads after `after` in list order, a superset of the
    /// matching ones among them. Fewer than `limit` bodies means the listing is exhausted.
    async fn scan_leads(&self, scan: LeadScan<'_>) -> Result<Vec<Vec<u8>>, Error>;

    /// Every distinct custom attribute name carried by at least one of the partition's leads,
    /// sorted (byte order). What an unfiltered export's `attr:<name>` columns are, read without
    /// visiting the leads themselves.
    async fn attribute_names(&self, partition: &str) -> Result<Vec<String>, Error>;
}
