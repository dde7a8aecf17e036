//! SQS consumer of presence events. The queue delays each event (`PresenceDelaySeconds`); the consumer re-reads the
//! user's presence and pushes `presence` to the user's online friends only if the status differs from the one last
//! pushed, so a connection that flaps inside the delay pushes nothing.

use natter_core::{
    jobs::PresenceJob,
    lambda::{self, LambdaEvent, SqsBatchResponse, SqsEvent},
    now_ms,
    ports::{JobQueue, Pusher, Store},
    service::App,
};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

const CONCURRENCY: usize = 10;

pub async fn handle<S: Store, P: Pusher, Q: JobQueue>(
    app: &App<S, P, Q>,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error> {
    Ok(
        lambda::process_batch(&app.meter, event.payload, CONCURRENCY, |job: PresenceJob| async move {
            app.notify_presence(&job, now_ms()).await
        })
        .await,
    )
}
