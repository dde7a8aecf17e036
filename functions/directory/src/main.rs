use natter_core::{
    aws::AwsApp,
    lambda::lambda_runtime::{Error, run, service_fn, tracing},
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let app = AwsApp::from_env(true).await?;
    run(service_fn(|event| natter_directory::handle(&app, event))).await
}
