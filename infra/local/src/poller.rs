//! SQS event sources as Lambda runs them: pollers receive from the queue, gather a batch (BatchSize,
//! MaximumBatchingWindowInSeconds), invoke the function with an SqsEvent and delete what succeeded. With
//! ReportBatchItemFailures only the reported records stay; otherwise a failed invocation leaves the whole batch.
//! What stays becomes visible again after the queue's visibility timeout, and the queue's redrive policy moves a
//! message to its dead-letter queue after maxReceiveCount receives.

use crate::{runtime::Function, stack::SqsSource};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use serde_json::{Map, Value, json};
use std::{
    collections::HashSet,
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::sync::watch;
use tracing::warn;

#[derive(Clone)]
pub struct Mapping {
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub queue_arn: String,
    pub region: String,
    pub source: SqsSource,
    pub function: Arc<Function>,
}

fn record(m: &Message, arn: &str, region: &str) -> Value {
    let attributes: Map<String, Value> = m
        .attributes()
        .map(|a| {
            a.iter()
                .map(|(k, v)| (k.as_str().to_owned(), Value::String(v.clone())))
                .collect()
        })
        .unwrap_or_default();
    let message_attributes: Map<String, Value> = m
        .message_attributes()
        .map(|a| {
            a.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        json!({
                            "stringValue": v.string_value(),
                            "stringListValues": [],
                            "binaryListValues": [],
                            "dataType": v.data_type(),
                        }),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "messageId": m.message_id(),
        "receiptHandle": m.receipt_handle(),
        "body": m.body(),
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": m.md5_of_body(),
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": region,
    })
}

impl Mapping {
    /// Gathers up to BatchSize messages, waiting at most the batching window once the first arrived.
    async fn gather(&self, stop: &watch::Receiver<bool>) -> Vec<Message> {
        let mut batch: Vec<Message> = Vec::new();
        let window = Duration::from_secs(self.source.window_secs);
        let mut first_at: Option<Instant> = None;
        while batch.len() < self.source.batch_size && !*stop.borrow() {
            if let Some(t) = first_at
                && t.elapsed() >= window
            {
                break;
            }
            let want = (self.source.batch_size - batch.len()).min(10) as i32;
            let wait = if batch.is_empty() { 1 } else { 0 };
            let r = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(want)
                .wait_time_seconds(wait)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send()
                .await;
            match r {
                Ok(out) => {
                    let got = out.messages.unwrap_or_default();
                    if got.is_empty() {
                        if batch.is_empty() {
                            continue;
                        }
                        // Something is gathered and the queue is empty: wait out the window briefly.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    } else {
                        first_at.get_or_insert_with(Instant::now);
                        for m in got {
                            // A visibility timeout shorter than the batching window lets a message come back into
                            // the batch it is already in: keep one copy, with the newest receipt handle.
                            match batch.iter_mut().find(|b| b.message_id() == m.message_id()) {
                                Some(old) => *old = m,
                                None => batch.push(m),
                            }
                        }
                    }
                    if window.is_zero() && !batch.is_empty() {
                        break;
                    }
                }
                Err(e) => {
                    warn!(queue = %self.queue_url, error = %aws_sdk_sqs::error::DisplayErrorContext(e), "receive failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        batch
    }

    async fn delete(&self, messages: &[&Message]) {
        for chunk in messages.chunks(10) {
            let entries: Vec<DeleteMessageBatchRequestEntry> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(m.receipt_handle()?)
                        .build()
                        .ok()
                })
                .collect();
            if let Err(e) = self
                .sqs
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                warn!(queue = %self.queue_url, error = %aws_sdk_sqs::error::DisplayErrorContext(e), "delete failed");
            }
        }
    }

    /// One poller: gather, invoke, delete, until `stop`.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            let watching = stop.clone();
            let batch = tokio::select! {
                b = self.gather(&watching) => b,
                _ = stop.changed() => return,
            };
            if batch.is_empty() {
                continue;
            }
            let event = json!({ "Records": batch.iter().map(|m| record(m, &self.queue_arn, &self.region)).collect::<Vec<_>>() });
            match self.function.invoke(&event).await {
                Ok(response) => {
                    let failed: HashSet<String> = if self.source.report_failures {
                        response["batchItemFailures"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_owned))
                            .collect()
                    } else {
                        HashSet::new()
                    };
                    let ids: HashSet<&str> = batch.iter().filter_map(|m| m.message_id()).collect();
                    // Lambda treats a failure it cannot match to a record as a failure of the whole batch.
                    if failed.iter().any(|f| !ids.contains(f.as_str())) {
                        warn!(
                            function = self.function.logical_id(),
                            "unknown itemIdentifier: the whole batch is retried"
                        );
                        continue;
                    }
                    let done: Vec<&Message> = batch
                        .iter()
                        .filter(|m| !m.message_id().is_some_and(|id| failed.contains(id)))
                        .collect();
                    self.delete(&done).await;
                }
                Err(e) => {
                    warn!(function = self.function.logical_id(), error = %e, "batch failed; it returns after the visibility timeout")
                }
            }
        }
    }
}
