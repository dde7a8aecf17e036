//! SQS consumer of history jobs: indexes each sent one-on-one message for both participants (MessageIndex) and
//! updates their sessions (recipient: unread +1 and preview; sender: preview). Records are processed on their own
//! and only failed ones are retried (ReportBatchItemFailures); a redelivered job changes nothing twice.

use natter_core::{
    aws::AwsApp,
    jobs::HistoryJob,
    lambda::{self, LambdaEvent, SqsBatchResponse, SqsEvent},
};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Conversations indexed at once within a batch.
const CONCURRENCY: usize = 10;

pub async fn handle(app: &AwsApp, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    // Jobs of one conversation update the same two sessions: they run one after the other, oldest message first
    // (an older message after a newer one costs the session a re-read and a second transaction), conversations
    // concurrently.
    let conversation = |job: &HistoryJob| {
        let (a, b) = if job.from <= job.to {
            (&job.from, &job.to)
        } else {
            (&job.to, &job.from)
        };
        (format!("{a}#{b}"), job.timestamp())
    };
    Ok(
        lambda::process_batch_by_key(event.payload, CONCURRENCY, conversation, |job: HistoryJob| async move {
            app.index_direct(&job).await
        })
        .await,
    )
}
