//! The `export-stream` Lambda function: `GET /leads/export` behind a Function URL with response
//! streaming, so inline exports of any size stream. Wiring only.

#[tokio::main]
async fn main() -> Result<(), klozeo_core::edges::lambda::LambdaError> {
    klozeo_core::edges::lambda::run_export_streaming().await
}
