//! The jobs queue port: durable background work (webhook deliveries, rescoring runs).
//!
//! On AWS it is SQS with a dead-letter queue, and Lambda hands received messages to the
//! worker; on one machine it is a table in the store that an in-process worker claims from.
//! A message is delivered at least once: a worker that dies before acknowledging it sees it
//! again.

use async_trait::async_trait;

use crate::error::Error;

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutMessage {
    /// The message (a JSON job description).
    pub body: String,
    /// Seconds before it becomes visible, at most [`JobQueue::max_delay_secs`].
    pub delay_secs: u32,
}

/// The sending side of the jobs queue.
#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Sends messages; all are durably queued when this returns `Ok`.
    async fn send(&self, messages: Vec<OutMessage>) -> Result<(), Error>;
    /// Records a message whose work failed for good, for an operator to inspect (the
    /// dead-letter queue on AWS).
    async fn dead_letter(&self, body: String) -> Result<(), Error>;
    /// The longest delay one message may carry (SQS: 900 s). Longer waits are done in hops.
    fn max_delay_secs(&self) -> u32;
}

/// A received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The message.
    pub body: String,
    /// How many times it has been received, this time included.
    pub receive_count: u32,
    /// What acknowledges it.
    pub handle: String,
}

/// The receiving side of the jobs queue, for a worker that polls it (`klozeo serve`; on
/// Lambda, SQS hands messages to the function instead).
#[async_trait]
pub trait JobSource: Send + Sync {
    /// Receives up to `max` messages, hidden from other receivers for `lease`.
    async fn receive(&self, max: u32, lease: std::time::Duration) -> Result<Vec<Received>, Error>;
    /// Removes a message whose work is done.
    async fn ack(&self, handle: &str) -> Result<(), Error>;
    /// Resolves when there may be new work (or after a short wait).
    async fn wait(&self);
}
