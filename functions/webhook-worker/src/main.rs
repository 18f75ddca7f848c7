//! The `webhook-worker` Lambda function: the outbox stream, the jobs queue and the outbox
//! sweep. Wiring only.

#[tokio::main]
async fn main() -> Result<(), klozeo_core::edges::lambda::LambdaError> {
    klozeo_core::edges::lambda::run_worker().await
}
