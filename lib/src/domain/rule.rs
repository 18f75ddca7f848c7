//! Scoring rules: a named expression with a weight, summed and clamped into a lead's score.

use serde::{Deserialize, Serialize};

/// A scoring rule as the API returns it (wire-contract §4.6, plus the documented `weight`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ScoringRule {
    /// A UUID.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The expression (see `domain::scoring`).
    pub expression: String,
    /// Multiplier of the rule's value in the score (default 1.0).
    pub weight: f64,
    /// Ordering of the rule list, highest first (default 0). Does not affect the score.
    pub priority: i32,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// Longest rule name, in characters.
pub const MAX_RULE_NAME: usize = 200;
/// Most rules per account.
pub const MAX_RULES: usize = 100;
