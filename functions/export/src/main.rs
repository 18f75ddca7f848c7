//! The `export` Lambda function: `GET /leads/export` behind API Gateway. Wiring only.

#[tokio::main]
async fn main() -> Result<(), klozeo_core::edges::lambda::LambdaError> {
    klozeo_core::edges::lambda::run_export().await
}
