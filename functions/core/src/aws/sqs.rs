//! Sends jobs to the SQS queues of the asynchronous consumers.

use super::call_error;
use crate::{
    config::Queues,
    error::BackendError,
    jobs::{Job, QueueKind},
    ports::{JobQueue, Res},
};
use aws_config::retry::RetryConfig;
use aws_sdk_sqs::Client;

#[derive(Clone)]
pub struct SqsQueue {
    client: Client,
    queues: Queues,
}

impl SqsQueue {
    pub fn new(client: Client, queues: Queues) -> Self {
        Self { client, queues }
    }

    fn url(&self, kind: QueueKind) -> Res<&str> {
        let (url, var) = match kind {
            QueueKind::Index => (&self.queues.index, Queues::INDEX),
            QueueKind::Fanout => (&self.queues.fanout, Queues::FANOUT),
            QueueKind::Presence => (&self.queues.presence, Queues::PRESENCE),
            QueueKind::Notify => (&self.queues.notify, Queues::NOTIFY),
        };
        url.as_deref()
            .ok_or_else(|| BackendError::corrupt("configuration", format!("{var} is not set")))
    }

    /// Opens the client's connection (TLS on AWS) at init: a `SendMessageBatch` of no message to one of the
    /// function's queues, which SQS refuses as empty (see `wiring::warm_up`; only the connection matters).
    pub(crate) async fn warm_up(&self) {
        let kinds = [
            QueueKind::Index,
            QueueKind::Fanout,
            QueueKind::Presence,
            QueueKind::Notify,
        ];
        let Some(url) = kinds
            .into_iter()
            .find_map(|k| self.url(k).ok().filter(|u| !u.is_empty()))
        else {
            return;
        };
        let _refused = self
            .client
            .send_message_batch()
            .queue_url(url)
            .set_entries(Some(Vec::new()))
            .customize()
            .config_override(aws_sdk_sqs::config::Builder::default().retry_config(RetryConfig::disabled()))
            .send()
            .await;
    }
}

impl JobQueue for SqsQueue {
    async fn enqueue(&self, job: &Job) -> Res<()> {
        self.client
            .send_message()
            .queue_url(self.url(job.queue())?)
            .message_body(job.to_json())
            .set_delay_seconds(job.delay_secs())
            .send()
            .await
            .map_err(|e| call_error("SQS", "SendMessage", e))?;
        Ok(())
    }

    async fn enqueue_all(&self, jobs: &[Job]) -> Res<()> {
        use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
        for chunk in jobs.chunks(10) {
            let Some(first) = chunk.first() else { continue };
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, job)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(job.to_json())
                        .set_delay_seconds(job.delay_secs())
                        .build()
                        .map_err(|e| BackendError::Call {
                            service: "SQS",
                            operation: "SendMessageBatch",
                            retryable: false,
                            source: Box::new(e),
                        })
                })
                .collect::<Res<Vec<_>>>()?;
            let out = self
                .client
                .send_message_batch()
                .queue_url(self.url(first.queue())?)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| call_error("SQS", "SendMessageBatch", e))?;
            if !out.failed.is_empty() {
                return Err(BackendError::Partial {
                    what: "SQS batch entries",
                    failed: out.failed.len(),
                    of: chunk.len(),
                });
            }
        }
        Ok(())
    }
}
