//! `send`: validates, claims (sender, clientMsgId) so retries never store twice, stores the message, pushes it to
//! every connection of the recipient and to the sender's other connections (removing connections that answer
//! 410), queues its indexing, and answers `ack` through the route response. Also `typing`, which is forwarded
//! to the same people a message would reach and never stored, and `attach`, which answers a presigned upload
//! (the bytes never pass through here).

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
    let deadline = event.context.deadline as i64;
    Ok(lambda::frame_route(app, &event.payload, |caller, request| async move {
        match &request.frame {
            ClientFrame::Send(frame) => {
                let ack = app.send(&caller, frame, now_ms(), deadline).await?;
                Ok(Answer::Frame(ServerFrame::Ack(ack)))
            }
            ClientFrame::Attach(frame) => {
                let upload = app.attach(&caller.user, frame, now_ms()).await?;
                Ok(Answer::Frame(ServerFrame::Upload(upload)))
            }
            ClientFrame::Typing(frame) => {
                app.typing(&caller, frame, now_ms()).await?;
                Ok(Answer::Done)
            }
            other => Err(lambda::misrouted(other.action())),
        }
    })
    .await)
}
