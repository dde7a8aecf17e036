//! `$connect`: registers the user on first sight, records the connection (TTL) and adds it to the user's
//! presence. Runs after the authorizer accepted the token; a failure here refuses the upgrade, and the client
//! retries. Nothing is pushed: API Gateway does not accept posts before `$connect` returns.

use natter_core::{
    aws::AwsApp,
    lambda::{self, ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest, LambdaEvent},
    now_ms,
};
use tracing::info;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

pub async fn handle(
    app: &AwsApp,
    event: LambdaEvent<ApiGatewayWebsocketProxyRequest>,
) -> Result<ApiGatewayProxyResponse, Error> {
    let started = natter_core::metrics::begin();
    let result = run(app, event.payload).await;
    natter_core::metrics::finish(started, "connect", 1);
    result
}

async fn run(app: &AwsApp, ev: ApiGatewayWebsocketProxyRequest) -> Result<ApiGatewayProxyResponse, Error> {
    let (Some(user), Some(connection)) = (lambda::authorized_user(&ev), lambda::connection_id(&ev)) else {
        return Err("$connect without an authorized user or a connection id".into());
    };
    let transition = app.connect(&user, &connection, now_ms()).await?;
    info!(%user, %connection, ?transition, "connected");
    Ok(lambda::response(None))
}
