//! Consumer of one-on-one messages to index: indexes each for both participants (MessageIndex) and updates their
//! sessions (recipient: unread +1 and preview; sender: preview). Its source is the Messages table's stream (each
//! stored message's insert); the IndexQueue still delivers the jobs that functions of earlier releases queued.
//! Records are processed on their own and only failed ones are retried (ReportBatchItemFailures); a redelivered
//! record changes nothing twice. A stream record that fails is handed to the IndexQueue instead of retried in the
//! stream: a stream retries in order, so one failing message would hold up every conversation on its shard, and
//! the queue has what operators redrive from (its dead-letter queue). Only a record that cannot be handed over
//! (or parsed) stays failed in the stream.

use natter_core::{
    aws::stream::StreamEvent,
    jobs::{IndexJob, Job},
    lambda::{self, LambdaEvent, SqsBatchResponse, SqsEvent},
    ports::{JobQueue, Pusher, Store},
    service::App,
};
use serde_json::Value;
use tracing::warn;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Conversations indexed at once within a batch.
const CONCURRENCY: usize = 10;

/// Jobs of one conversation update the same two sessions: they run one after the other, oldest message first (an
/// older message after a newer one finds its preview refused and costs a second write for `last_recv_ts`),
/// conversations concurrently.
fn conversation(job: &IndexJob) -> (String, i64) {
    let (a, b) = if job.from <= job.to {
        (&job.from, &job.to)
    } else {
        (&job.to, &job.from)
    };
    (format!("{a}#{b}"), job.timestamp())
}

pub async fn handle<S: Store, P: Pusher, Q: JobQueue>(
    app: &App<S, P, Q>,
    event: LambdaEvent<Value>,
) -> Result<SqsBatchResponse, Error> {
    let work = |job: IndexJob| async move { app.index_direct(&job).await };
    if event.payload["Records"][0]["eventSource"] == "aws:dynamodb" {
        let batch: StreamEvent = serde_json::from_value(event.payload)?;
        let records = batch
            .records
            .into_iter()
            .map(|r| (r.sequence_number().to_owned(), r.into_index_job()))
            .collect();
        // A message that fails to index goes to the queue; only one that cannot is failed in the stream.
        let index_or_hand_over = |job: IndexJob| async move {
            let Err(e) = app.index_direct(&job).await else {
                return Ok(());
            };
            warn!(message_id = %job.message_id, error = %e, "indexing failed; handing the message to the IndexQueue");
            app.queue.enqueue(&Job::Index(job)).await.map_err(|_| e)
        };
        return Ok(
            lambda::process_records_by_key(&app.meter, records, CONCURRENCY, conversation, index_or_hand_over).await,
        );
    }
    let batch: SqsEvent = serde_json::from_value(event.payload)?;
    Ok(lambda::process_batch_by_key(&app.meter, batch, CONCURRENCY, conversation, work).await)
}
