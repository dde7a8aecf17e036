//! SQS consumer of push jobs. Fan-out: a group message to every online member's connections; large groups are split
//! into chunk jobs queued back here, so delivery runs in parallel; a chunk whose posts failed is retried (a member
//! may get a message twice, never zero times; clients drop repeats by messageId). Catch-up: after a sync, what it
//! could not see yet, pushed to that connection (`service/catch_up.rs`).

use natter_core::{
    jobs::PushJob,
    lambda::{self, LambdaEvent, SqsBatchResponse, SqsEvent},
    now_ms,
    ports::{JobQueue, Pusher, Store},
    service::App,
};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Jobs of a batch pushed at once (each posts to up to a chunk of members).
const CONCURRENCY: usize = 4;

pub async fn handle<S: Store, P: Pusher, Q: JobQueue>(
    app: &App<S, P, Q>,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error> {
    Ok(
        lambda::process_batch(&app.meter, event.payload, CONCURRENCY, |job: PushJob| async move {
            match job {
                PushJob::Fanout(j) => app.fanout(&j, now_ms()).await,
                PushJob::CatchUp(j) => app.catch_up(&j, now_ms()).await,
            }
        })
        .await,
    )
}
