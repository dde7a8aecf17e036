//! `sync` (every conversation with unread counts and previews, then every unacknowledged message, oldest first,
//! page by page) and `history` (one conversation, newest first, page by page, participants only).

use natter_core::{
    frames::{ClientFrame, HistoryFrame},
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
            ClientFrame::Sync(s) => Ok(Answer::Frame(
                app.sync_connection(&caller, s.cursor.as_deref(), now_ms()).await?,
            )),
            ClientFrame::History(h) => {
                let limit = h.limit.unwrap_or(HistoryFrame::DEFAULT_LIMIT) as usize;
                Ok(Answer::Frame(
                    app.history(&caller.user, &h.conversation, h.before.as_deref(), limit, now_ms())
                        .await?,
                ))
            }
            other => Err(lambda::misrouted(other.action())),
        }
    })
    .await)
}
