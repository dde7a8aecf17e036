//! `$disconnect`: removes the connection from the registry and from the user's presence; the user goes offline,
//! with last_seen, when no connection is left. API Gateway delivers `$disconnect` on a best-effort basis: what it
//! misses, the connection's TTL and the 410 of the next push clean up.

use natter_core::{
    lambda::{self, ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest, LambdaEvent},
    now_ms,
    ports::{JobQueue, Pusher, Store},
    service::App,
};
use tracing::info;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

pub async fn handle<S: Store, P: Pusher, Q: JobQueue>(
    app: &App<S, P, Q>,
    event: LambdaEvent<ApiGatewayWebsocketProxyRequest>,
) -> Result<ApiGatewayProxyResponse, Error> {
    let started = app.meter.begin();
    let result = run(app, event.payload).await;
    app.meter.finish(started, "disconnect", 1);
    result
}

async fn run<S: Store, P: Pusher, Q: JobQueue>(
    app: &App<S, P, Q>,
    ev: ApiGatewayWebsocketProxyRequest,
) -> Result<ApiGatewayProxyResponse, Error> {
    let (Some(user), Some(connection)) = (lambda::authorized_user(&ev), lambda::connection_id(&ev)) else {
        return Err("$disconnect without an authorized user or a connection id".into());
    };
    let transition = app.drop_connection(&user, &connection, now_ms()).await?;
    info!(%user, %connection, ?transition, status = ?ev.request_context.disconnect_status_code, "disconnected");
    Ok(lambda::response(None))
}
