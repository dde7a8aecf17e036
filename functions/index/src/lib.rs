//! SQS consumer of index jobs: indexes each sent one-on-one message for both participants (MessageIndex) and
//! updates their sessions (recipient: unread +1 and preview; sender: preview). Records are processed on their own
//! and only failed ones are retried (ReportBatchItemFailures); a redelivered job changes nothing twice.

use natter_core::{
    jobs::IndexJob,
    lambda::{self, LambdaEvent, SqsBatchResponse, SqsEvent},
    ports::{JobQueue, Pusher, Store},
    service::App,
};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Conversations indexed at once within a batch.
const CONCURRENCY: usize = 10;

pub async fn handle<S: Store, P: Pusher, Q: JobQueue>(
    app: &App<S, P, Q>,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error> {
    // Jobs of one conversation update the same two sessions: they run one after the other, oldest message first
    // (an older message after a newer one finds its preview refused and costs a second write for
    // `last_recv_ts`), conversations concurrently.
    let conversation = |job: &IndexJob| {
        let (a, b) = if job.from <= job.to {
            (&job.from, &job.to)
        } else {
            (&job.to, &job.from)
        };
        (format!("{a}#{b}"), job.timestamp())
    };
    Ok(lambda::process_batch_by_key(
        &app.meter,
        event.payload,
        CONCURRENCY,
        conversation,
        |job: IndexJob| async move { app.index_direct(&job).await },
    )
    .await)
}
