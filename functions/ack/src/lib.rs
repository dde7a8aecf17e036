//! `ack` and `read`, and the changes of a message after it was sent (`edit`, `delete`, `react`: see
//! `service/changes.rs`). One-on-one acks take messages out of the recipient's mailbox, mark them delivered and send
//! the senders a `delivered` receipt. Group acks and reads are batched: they move the member's last acked (or
//! read) sequence forward, never backwards, and send no receipts. Answered only when the frame has a requestId.

use natter_core::{
    frames::{AckFrame, ClientFrame, ReadFrame},
    lambda::{self, Answer, ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest, LambdaEvent},
    model::Mark,
    now_ms,
    ports::{JobQueue, Pusher, Store},
    service::App,
};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

pub async fn handle<S: Store, P: Pusher, Q: JobQueue>(
    app: &App<S, P, Q>,
    event: LambdaEvent<ApiGatewayWebsocketProxyRequest>,
) -> Result<ApiGatewayProxyResponse, Error> {
    let arrived = lambda::arrived_ms(&event.payload);
    Ok(lambda::frame_route(app, &event.payload, |caller, request| async move {
        match &request.frame {
            ClientFrame::Ack(AckFrame::Messages { message_ids }) => {
                app.ack_direct(&caller.user, message_ids, now_ms(), arrived).await?;
                Ok(Answer::Done)
            }
            ClientFrame::Ack(AckFrame::Group { group, up_to_seq }) => {
                app.mark_group(&caller.user, group, Mark::Ack, *up_to_seq, arrived)
                    .await?;
                Ok(Answer::Done)
            }
            ClientFrame::Read(ReadFrame::Group { group, up_to_seq }) => {
                app.mark_group(&caller.user, group, Mark::Read, *up_to_seq, arrived)
                    .await?;
                Ok(Answer::Done)
            }
            ClientFrame::Read(ReadFrame::With { with, up_to }) => {
                app.read_direct(&caller.user, with, *up_to, now_ms()).await?;
                Ok(Answer::Done)
            }
            ClientFrame::Edit(frame) => {
                app.edit(&caller, frame, now_ms()).await?;
                Ok(Answer::Done)
            }
            ClientFrame::Delete(frame) => {
                app.delete(&caller, frame, now_ms()).await?;
                Ok(Answer::Done)
            }
            ClientFrame::React(frame) => {
                app.react(&caller, frame, now_ms()).await?;
                Ok(Answer::Done)
            }
            other => Err(lambda::misrouted(other.action())),
        }
    })
    .await)
}
