//! SQS consumer of presence events. The queue delays each event (`PresenceDelaySeconds`); the consumer re-reads the
//! user's presence and pushes `presence` to the user's online friends only if the status differs from the one last
//! pushed, so a connection that flaps inside the delay pushes nothing.

use natter_core::{
    aws::AwsApp,
    jobs::PresenceJob,
    lambda::{self, LambdaEvent, SqsBatchResponse, SqsEvent},
    now_ms,
};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

const CONCURRENCY: usize = 10;

pub async fn handle(app: &AwsApp, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    Ok(
        lambda::process_batch(event.payload, CONCURRENCY, |job: PresenceJob| async move {
            app.notify_presence(&job, now_ms()).await
        })
        .await,
    )
}
