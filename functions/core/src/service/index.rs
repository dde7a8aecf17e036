//! The `history` consumer: indexing one-on-one messages after they were sent.

use super::App;
use crate::{
    error::BackendError,
    jobs::IndexJob,
    now_ms,
    ports::{IndexStore, Indexed, JobQueue, PresenceStore, Pusher},
};

impl<S: IndexStore + PresenceStore, P: Pusher, Q: JobQueue> App<S, P, Q> {
    /// Indexes a sent one-on-one message for both participants and updates their sessions. Safe to repeat: SQS
    /// delivers at least once. A message its recipient read before it was indexed (the client showed the push)
    /// gets its read receipt now: the `read` could not vouch for a message the store did not know yet.
    pub async fn index_direct(&self, job: &IndexJob) -> Result<(), BackendError> {
        let indexed = self
            .store
            .index_direct(job, self.settings.message_expiry(job.timestamp()))
            .await?;
        if indexed == Indexed::ReadAhead {
            // Best effort like every receipt: the message is indexed, a redelivery would not send it again.
            if let Err(e) = self.read_receipt(&job.to, &job.from, job.timestamp(), now_ms()).await {
                tracing::warn!(error = %e, "the read receipt of a message read before it was indexed was not sent");
            }
        }
        Ok(())
    }
}
