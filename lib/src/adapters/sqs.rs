//! The jobs queue on SQS: messages with a delay (at most 15 minutes; longer waits hop), a
//! dead-letter queue for work that failed for good, and polling for a worker outside Lambda
//! (`klozeo serve --store dynamodb` against an emulator or a real account).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{MessageSystemAttributeName, SendMessageBatchRequestEntry};

use crate::error::Error;
use crate::ports::{JobQueue, JobSource, OutMessage, Received};

/// SQS's largest message delay.
const SQS_MAX_DELAY_SECS: u32 = 900;

/// A queue (and its dead-letter queue) on SQS.
#[derive(Clone)]
pub struct SqsQueue {
    client: Client,
    url: String,
    dlq_url: Option<String>,
}

fn sqs_err<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    op: &str,
    e: SdkError<E, R>,
) -> Error {
    let code = e.code().unwrap_or("").to_string();
    if matches!(e, SdkError::TimeoutError(_) | SdkError::DispatchFailure(_))
        || code.contains("Throttl")
        || code == "RequestThrottled"
    {
        return Error::Unavailable(format!("SQS {op} is temporarily unavailable ({code})"));
    }
    tracing::error!(operation = op, code = %code, error = ?e, "SQS call failed");
    Error::internal(format!(
        "SQS {op} failed: {code} {}",
        e.message().unwrap_or("")
    ))
}

impl SqsQueue {
    /// The queue at `url`, dead-lettering to `dlq_url`.
    pub fn new(client: Client, url: impl Into<String>, dlq_url: Option<String>) -> Self {
        SqsQueue {
            client,
            url: url.into(),
            dlq_url,
        }
    }

    /// The queue's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The dead-letter queue's URL.
    pub fn dlq_url(&self) -> Option<&str> {
        self.dlq_url.as_deref()
    }

    /// Creates (or finds) `<prefix>jobs` and its dead-letter queue `<prefix>jobs-dlq`, as
    /// `template.yaml` declares them, for emulators and local development (idempotent).
    pub async fn create(client: Client, prefix: &str) -> Result<SqsQueue, Error> {
        let dlq = client
            .create_queue()
            .queue_name(format!("{prefix}jobs-dlq"))
            .send()
            .await
            .map_err(|e| sqs_err("CreateQueue", e))?;
        let dlq_url = dlq.queue_url().unwrap_or_default().to_string();
        let attrs = client
            .get_queue_attributes()
            .queue_url(&dlq_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| sqs_err("GetQueueAttributes", e))?;
        let dlq_arn = attrs
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .cloned()
            .unwrap_or_default();
        let redrive = serde_json::json!({
            "deadLetterTargetArn": dlq_arn,
            "maxReceiveCount": "10",
        })
        .to_string();
        let q = client
            .create_queue()
            .queue_name(format!("{prefix}jobs"))
            .attributes(
                aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy,
                redrive,
            )
            .attributes(
                aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
                "360",
            )
            .send()
            .await
            .map_err(|e| sqs_err("CreateQueue", e))?;
        Ok(SqsQueue::new(
            client,
            q.queue_url().unwrap_or_default(),
            Some(dlq_url),
        ))
    }
}

#[async_trait]
impl JobQueue for SqsQueue {
    async fn send(&self, messages: Vec<OutMessage>) -> Result<(), Error> {
        for chunk in messages.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(&m.body)
                        .delay_seconds(m.delay_secs.min(SQS_MAX_DELAY_SECS) as i32)
                        .build()
                        .map_err(|e| Error::internal(format!("SQS batch entry: {e}")))
                })
                .collect::<Result<Vec<_>, Error>>()?;
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| sqs_err("SendMessageBatch", e))?;
            if let Some(f) = out.failed().first() {
                return Err(Error::Unavailable(format!(
                    "SQS refused a message ({}): {}",
                    f.code(),
                    f.message().unwrap_or("")
                )));
            }
        }
        Ok(())
    }

    async fn dead_letter(&self, body: String) -> Result<(), Error> {
        let Some(dlq) = &self.dlq_url else {
            tracing::warn!(message = %body, "job failed for good (no dead-letter queue configured)");
            return Ok(());
        };
        self.client
            .send_message()
            .queue_url(dlq)
            .message_body(body)
            .send()
            .await
            .map_err(|e| sqs_err("SendMessage", e))?;
        Ok(())
    }

    fn max_delay_secs(&self) -> u32 {
        SQS_MAX_DELAY_SECS
    }
}

#[async_trait]
impl JobSource for SqsQueue {
    async fn receive(&self, max: u32, lease: Duration) -> Result<Vec<Received>, Error> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .visibility_timeout(lease.as_secs().min(43_200) as i32)
            // Short polls: a long poll would hold a single-threaded emulator for its whole
            // wait; the worker paces itself in `wait` instead.
            .wait_time_seconds(0)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| sqs_err("ReceiveMessage", e))?;
        Ok(out
            .messages()
            .iter()
            .filter_map(|m| {
                Some(Received {
                    body: m.body()?.to_string(),
                    receive_count: m
                        .attributes()
                        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(1),
                    handle: m.receipt_handle()?.to_string(),
                })
            })
            .collect())
    }

    async fn ack(&self, handle: &str) -> Result<(), Error> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(handle)
            .send()
            .await
            .map_err(|e| sqs_err("DeleteMessage", e))?;
        Ok(())
    }

    async fn wait(&self) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
