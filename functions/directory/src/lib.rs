//! The directory: `group` (create, add, remove (owner only), leave, members, list; every operation answers with
//! the group, or the groups, as they are after it), `friends` (add, remove, list with status and last seen) and
//! `heartbeat` (keeps the user online, refreshes last seen, answers `pong`).

use natter_core::{
    frames::{ClientFrame, ServerFrame},
    lambda::{self, Answer, ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest, LambdaEvent},
    now_ms,
    ports::{JobQueue, Pusher, Store},
    service::App,
};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

pub async fn handle<S: Store, P: Pusher, Q: JobQueue>(
    app: &App<S, P, Q>,
    event: LambdaEvent<ApiGatewayWebsocketProxyRequest>,
) -> Result<ApiGatewayProxyResponse, Error> {
    Ok(lambda::frame_route(app, &event.payload, |caller, request| async move {
        match &request.frame {
            ClientFrame::Group(op) => Ok(Answer::Frame(app.group_op(&caller.user, op, now_ms()).await?)),
            ClientFrame::Friends(op) => Ok(Answer::Frame(app.friends_op(&caller.user, op, now_ms()).await?)),
            ClientFrame::Heartbeat => Ok(Answer::Frame(ServerFrame::Pong(
                app.heartbeat(&caller.user, now_ms()).await?,
            ))),
            ClientFrame::Device(op) => {
                app.device_op(&caller.user, op, now_ms()).await?;
                Ok(Answer::Done)
            }
            other => Err(lambda::misrouted(other.action())),
        }
    })
    .await)
}
