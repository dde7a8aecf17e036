//! `ack`: a recipient acknowledges one-on-one messages; they leave its mailbox, are marked delivered, and the
//! sender's connections get a `delivered` receipt. Answered only when the frame carries a requestId.

use natter_core::{
    aws::AwsApp,
    error::bad_request,
    frames::{Ack, ClientFrame},
    lambda::{self, Answer, ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest, LambdaEvent},
    now_ms,
};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

pub async fn handle(
    app: &AwsApp,
    event: LambdaEvent<ApiGatewayWebsocketProxyRequest>,
) -> Result<ApiGatewayProxyResponse, Error> {
    Ok(lambda::frame_route(&event.payload, |caller, request| async move {
        match &request.frame {
            ClientFrame::Ack(Ack::Messages { message_ids }) => {
                app.ack_direct(&caller.user, message_ids, now_ms()).await?;
                Ok(Answer::Done)
            }
            ClientFrame::Ack(Ack::Group { .. }) => Err(bad_request("group acks are not supported yet")),
            other => Err(lambda::misrouted(other.action())),
        }
    })
    .await)
}
