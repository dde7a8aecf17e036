//! `$connect`: registers the user on first sight, records the connection (TTL) and adds it to the user's
//! presence. Runs after the authorizer accepted the token; a failure here refuses the upgrade, and the client
//! retries. A user at its most connections is refused with 429. Nothing is pushed: API Gateway does not accept posts before `$connect` returns.

use natter_core::{
    lambda::{self, ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest, LambdaEvent},
    model::Opened,
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
    app.meter.finish(started, "connect", 1);
    result
}

async fn run<S: Store, P: Pusher, Q: JobQueue>(
    app: &App<S, P, Q>,
    ev: ApiGatewayWebsocketProxyRequest,
) -> Result<ApiGatewayProxyResponse, Error> {
    let (Some(user), Some(connection)) = (lambda::authorized_user(&ev), lambda::connection_id(&ev)) else {
        return Err("$connect without an authorized user or a connection id".into());
    };
    match app.connect(&user, &connection, now_ms()).await? {
        Opened::Open(transition) => {
            info!(%user, %connection, ?transition, "connected");
            Ok(lambda::response(None))
        }
        Opened::Full => {
            info!(%user, %connection, "refused: too many connections");
            // API Gateway refuses the upgrade with this status.
            let mut refused = lambda::response(None);
            refused.status_code = 429;
            Ok(refused)
        }
    }
}
