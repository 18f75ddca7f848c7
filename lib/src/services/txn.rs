//! Atomic writes whose conditions have names.
//!
//! The store reports a failed transaction by the position of the write whose condition did not
//! hold, as DynamoDB does. Positions shift whenever a write is added, so services never read
//! them: each write is added with the [`Check`] it stands for, and a failure comes back as that
//! name.

use crate::error::Error;
use crate::ports::{Store, StoreError, WriteOp};

/// What a write's condition protects, by meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The write has no condition that can fail (or its failure means nothing specific).
    None,
    /// A new lead id is not taken.
    LeadAbsent,
    /// The lead is unchanged since it was read.
    LeadVersion,
    /// The lead still exists.
    LeadExists,
    /// The plan's lead limit still has room.
    LeadLimit,
    /// A unique value (e-mail, source_id) is not claimed by another lead.
    UniqueValue,
    /// A unique-value marker is unchanged since it was read.
    MarkerVersion,
    /// A new note id is not taken.
    NoteAbsent,
    /// The note is unchanged since it was read.
    NoteVersion,
    /// A new scoring rule id is not taken.
    RuleAbsent,
    /// The rule is unchanged since it was read.
    RuleVersion,
    /// The rule still exists.
    RuleExists,
    /// A new account id is not taken.
    AccountAbsent,
    /// No account has this e-mail yet.
    AccountEmailFree,
    /// A new API key is not taken.
    KeyAbsent,
    /// A record of the request-rate or idempotency state is unchanged since it was read.
    StateVersion,
    /// A new outbox event id is not taken.
    EventAbsent,
}

/// Why a transaction did not commit.
#[derive(Debug, Clone, PartialEq)]
pub enum TxnError {
    /// The named condition did not hold; nothing was written.
    Failed(Check),
    /// The store failed; nothing was written.
    Store(Error),
}

/// A group of writes applied atomically, each with the name of its condition.
#[derive(Debug, Default)]
pub struct Txn {
    ops: Vec<WriteOp>,
    checks: Vec<Check>,
}

impl Txn {
    /// An empty transaction.
    pub fn new() -> Self {
        Txn::default()
    }

    /// Adds a write whose condition stands for `check`.
    pub fn push(&mut self, check: Check, op: WriteOp) -> &mut Self {
        // Two events of an account without webhooks are the same check; DynamoDB takes one
        // operation per item in a transaction.
        if matches!(op, WriteOp::Check { .. }) && self.ops.contains(&op) {
            return self;
        }
        self.ops.push(op);
        self.checks.push(check);
        self
    }

    /// Adds writes that all stand for `check`.
    pub fn extend(&mut self, check: Check, ops: impl IntoIterator<Item = WriteOp>) -> &mut Self {
        for op in ops {
            self.push(check, op);
        }
        self
    }

    /// Number of writes.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Applies every write, or none.
    pub async fn commit(self, store: &dyn Store) -> Result<(), TxnError> {
        if self.ops.is_empty() {
            return Ok(());
        }
        match store.transact(self.ops).await {
            Ok(()) => Ok(()),
            Err(StoreError::ConditionFailed(i)) => Err(TxnError::Failed(
                self.checks.get(i).copied().unwrap_or(Check::None),
            )),
            Err(StoreError::Other(e)) => Err(TxnError::Store(e)),
        }
    }
}

impl TxnError {
    /// The error a caller sees when the failed condition needs no special answer: a lost race
    /// (`conflict`, retryable) with `message`, or the store's own error.
    pub fn into_error(self, message: &str) -> Error {
        match self {
            TxnError::Failed(_) => Error::conflict(message),
            TxnError::Store(e) => e,
        }
    }
}
