use natter_core::lambda::lambda_runtime::{Error, run, service_fn, tracing};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let verifier = natter_authorizer::verifier_from_secret().await?;
    run(service_fn(|event| natter_authorizer::handle(&verifier, event))).await
}
