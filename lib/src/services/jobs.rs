//! The worker's side of the jobs queue: what one message means and what running it does.
//! The runtimes (the SQS event handler on Lambda, the in-process worker of `klozeo serve`)
//! receive messages and acknowledge them when [`JobRunner::run`] returns `Ok`.

use std::sync::Arc;

use crate::config::JobsConfig;
use crate::domain::job::{JobMessage, JobStatus};
use crate::error::{Error, Result};
use crate::ports::{JobQueue, OutMessage};
use crate::services::scoring::ScoringService;
use crate::services::webhooks::WebhookService;

/// Runs job messages.
#[derive(Clone)]
pub struct JobRunner {
    webhooks: WebhookService,
    scoring: ScoringService,
    queue: Arc<dyn JobQueue>,
    cfg: JobsConfig,
}

impl JobRunner {
    /// Builds the runner.
    pub fn new(
        webhooks: WebhookService,
        scoring: ScoringService,
        queue: Arc<dyn JobQueue>,
        cfg: JobsConfig,
    ) -> Self {
        JobRunner {
            webhooks,
            scoring,
            queue,
            cfg,
        }
    }

    /// Runs one message. `Ok` means it is done with (including when its work continues in a
    /// message it queued); an error means it should be received again later. A message that
    /// cannot be understood is dead-lettered and acknowledged, since it would never succeed.
    pub async fn run(&self, body: &str) -> Result<()> {
        let msg = match JobMessage::parse(body) {
            Ok(m) => m,
            Err(why) => {
                tracing::error!(error = %why, "unreadable job message");
                return self.queue.dead_letter(body.to_string()).await;
            }
        };
        match msg {
            JobMessage::Deliver {
                account_id,
                webhook_id,
                delivery_id,
                not_before,
            } => {
                self.webhooks
                    .deliver(&account_id, &webhook_id, &delivery_id, not_before)
                    .await
            }
            JobMessage::Continue { account_id, job_id } => {
                let job = self
                    .scoring
                    .run_step(&account_id, &job_id, self.cfg.step_budget)
                    .await?;
                if job.is_some_and(|j| j.status == JobStatus::Running) {
                    let next = JobMessage::Continue { account_id, job_id };
                    self.queue
                        .send(vec![OutMessage {
                            body: next.to_body(),
                            delay_secs: 0,
                        }])
                        .await?;
                }
                Ok(())
            }
        }
    }

    /// Records that a message failed for good after `receive_count` tries (the local worker's
    /// counterpart of SQS's redrive to the dead-letter queue).
    pub async fn give_up(&self, body: &str, receive_count: u32, error: &Error) -> Result<()> {
        tracing::error!(error = %error, receive_count, message = %body, "job given up");
        self.queue.dead_letter(body.to_string()).await
    }
}
