//! The `history` consumer: indexing one-on-one messages after they were sent.

use super::App;
use crate::{error::BackendError, jobs::IndexJob, ports::IndexStore};

impl<S: IndexStore, P, Q> App<S, P, Q> {
    /// Indexes a sent one-on-one message for both participants and updates their sessions. Safe to repeat: SQS
    /// delivers at least once.
    pub async fn index_direct(&self, job: &IndexJob) -> Result<(), BackendError> {
        self.store
            .index_direct(job, self.settings.message_expiry(job.timestamp()))
            .await
    }
}
