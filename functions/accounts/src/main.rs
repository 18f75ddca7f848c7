//! The `accounts` Lambda function: registration, login, the account, its API keys and the
//! analytics routes. Wiring only.

use klozeo_core::edges::http::Routes;

#[tokio::main]
async fn main() -> Result<(), klozeo_core::edges::lambda::LambdaError> {
    klozeo_core::edges::lambda::run_http(Routes::Accounts).await
}
