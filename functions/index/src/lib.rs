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
use std::collections::HashMap;

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
    let from_stream = event.payload["Records"][0]["eventSource"] == "aws:dynamodb";
    if from_stream {
        let batch: StreamEvent = serde_json::from_value(event.payload)?;
        let records: Vec<_> = batch
            .records
            .iter()
            .map(|r| (r.sequence_number().to_owned(), r.index_job()))
            .collect();
        let jobs: HashMap<String, IndexJob> = records
            .iter()
            .filter_map(|(id, job)| Some((id.clone(), job.as_ref().ok()?.clone()?)))
            .collect();
        let mut response = lambda::process_records_by_key(&app.meter, records, CONCURRENCY, conversation, work).await;
        let mut still_failed = Vec::new();
        for failure in response.batch_item_failures {
            let handed_over = match jobs.get(&failure.item_identifier) {
                Some(job) => app.queue.enqueue(&Job::Index(job.clone())).await.is_ok(),
                None => false,
            };
            if !handed_over {
                still_failed.push(failure);
            }
        }
        response.batch_item_failures = still_failed;
        return Ok(response);
    }
    let batch: SqsEvent = serde_json::from_value(event.payload)?;
    Ok(lambda::process_batch_by_key(&app.meter, batch, CONCURRENCY, conversation, work).await)
}
