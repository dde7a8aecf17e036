//! Sends jobs to the SQS queues of the asynchronous consumers.

use super::call_error;
use crate::{
    config::Queues,
    error::BackendError,
    jobs::{Job, QueueKind},
    ports::{JobQueue, Res},
};
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
            QueueKind::History => (&self.queues.history, "HISTORY_QUEUE_URL"),
            QueueKind::Fanout => (&self.queues.fanout, "FANOUT_QUEUE_URL"),
            QueueKind::Presence => (&self.queues.presence, "PRESENCE_QUEUE_URL"),
        };
        url.as_deref()
            .ok_or_else(|| BackendError::corrupt("configuration", format!("{var} is not set")))
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
}
