//! The `history` consumer: indexing one-on-one messages after they were sent.

use super::App;
use crate::{
    error::BackendError,
    jobs::IndexJob,
    now_ms,
    ports::{ChangeStore, IndexStore, Indexed, JobQueue, MessageStore, PresenceStore, Pusher},
};

impl<S: IndexStore + PresenceStore + MessageStore + ChangeStore, P: Pusher, Q: JobQueue> App<S, P, Q> {
    /// Indexes a sent one-on-one message for both participants and updates their sessions. Safe to repeat: SQS
    /// delivers at least once. A message its recipient read before it was indexed (the client showed the push)
    /// gets its read receipt now: the `read` could not vouch for a message the store did not know yet.
    pub async fn index_direct(&self, job: &IndexJob) -> Result<(), BackendError> {
        // A retry's copy of a job that most likely ran already: a strong read instead of refused writes, so a
        // client retrying one send in a loop costs reads, not an index job's writes, per frame.
        if job.again && self.store.indexed(job).await? {
            return Ok(());
        }
        let indexed = self
            .store
            .index_direct(job, self.settings.message_expiry(job.timestamp()))
            .await?;
        // The previews were written with the body the job carries. An edit or delete that came first found no
        // preview of this message to change; its message is written before its previews are, and this read comes
        // after this job's previews, so one of the two always sees the other (one strong read per message).
        if let Some(m) = self.store.get_message(&job.message_id).await?
            && (m.deleted() || m.edited_at.is_some())
        {
            self.store.follow_previews(&m).await?;
        }
        if indexed == Indexed::ReadAhead {
            // Best effort like every receipt: the message is indexed, a redelivery would not send it again.
            if let Err(e) = self.read_receipt(&job.to, &job.from, job.timestamp(), now_ms()).await {
                tracing::warn!(error = %e, "the read receipt of a message read before it was indexed was not sent");
            }
        }
        Ok(())
    }
}
