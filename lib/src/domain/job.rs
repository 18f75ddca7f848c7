//! Durable background work: the messages on the jobs queue, and the record of a long job that
//! callers can follow (`GET /jobs/{id}`).

use serde::{Deserialize, Serialize};

/// One message on the jobs queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobMessage {
    /// Make the next attempt of a webhook delivery.
    Deliver {
        /// The account.
        account_id: String,
        /// The webhook.
        webhook_id: String,
        /// The delivery.
        delivery_id: String,
        /// Unix seconds before which the attempt must not be made (waits longer than the
        /// queue's largest delay are done in hops).
        not_before: i64,
    },
    /// Continue a job (a rescoring run) from where it stopped.
    Continue {
        /// The account.
        account_id: String,
        /// The job.
        job_id: String,
    },
}

impl JobMessage {
    /// The message as sent on the queue.
    pub fn to_body(&self) -> String {
        // A derived Serialize of strings and integers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses a received message.
    pub fn parse(body: &str) -> Result<JobMessage, String> {
        serde_json::from_str(body).map_err(|e| format!("not a job message: {e}"))
    }
}

/// What kind of job a record follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Rescoring every lead of the account after a rule change or `POST /leads/score/batch`.
    Rescore,
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Started; more steps to run.
    Running,
    /// Done.
    Succeeded,
    /// Gave up; `error` says why.
    Failed,
}

/// The stored record of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// A UUID.
    pub id: String,
    /// What it does.
    pub kind: JobKind,
    /// Where it stands.
    pub status: JobStatus,
    /// Items done so far.
    pub processed: u64,
    /// Items to do, as known when the job started.
    pub total: u64,
    /// Items whose stored value changed (for rescoring: scores).
    pub changed: u64,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds, when done.
    pub finished_at: Option<i64>,
    /// Where the next step resumes (the sort key of the last item done).
    #[serde(default)]
    pub cursor: Option<String>,
    /// Why it failed.
    #[serde(default)]
    pub error: Option<String>,
    /// Steps run so far (a job that keeps failing is given up).
    #[serde(default)]
    pub steps: u32,
    /// Unix milliseconds until which one runner holds the job: a second message for the same
    /// job (the backstop continuation, a redelivery) leaves it alone meanwhile, so no two steps
    /// ever work on it at once.
    #[serde(default)]
    pub lease_until_ms: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let m = JobMessage::Deliver {
            account_id: "a".into(),
            webhook_id: "w".into(),
            delivery_id: "d".into(),
            not_before: 5,
        };
        assert_eq!(JobMessage::parse(&m.to_body()), Ok(m));
        assert!(JobMessage::parse("{\"kind\":\"explode\"}").is_err());
    }
}
