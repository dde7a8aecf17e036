//! How a retry of `send` settles on the claim it found taken (see `send.rs` for the claim's life): answer with the
//! first attempt's ack when the send is done, wait for a live attempt, or take over a failed or dead one.

use super::App;
use crate::{
    error::BackendError,
    frames::Target,
    model::{Claim, ClaimKey, FoundDirect},
    ports::{GroupStore, JobQueue, MessageStore},
};
use std::time::Duration;

/// What to do with a claim found taken.
pub(super) enum Settled {
    /// The send completed before: answer with its ack.
    Done(Claim),
    /// This attempt now holds the claim and must finish the send.
    Resume(Claim),
}

/// How close to the invocation deadline a waiting retry gives up (and answers `unavailable`).
const DEADLINE_MARGIN_MS: i64 = 500;

impl<S: MessageStore + GroupStore, P, Q: JobQueue> App<S, P, Q> {
    /// Decides what a retry does with a claim it found taken.
    pub(super) async fn settle(&self, key: &ClaimKey, mut seen: Claim, deadline: i64) -> Result<Settled, BackendError> {
        let mut wait_ms = 20;
        loop {
            if seen.done {
                return Ok(Settled::Done(seen));
            }
            // Its indexing needs nothing from a retry: the message's insert is on the Messages stream, which the
            // index function consumes until it succeeds.
            if let Some(found) = self.stored_direct(&seen).await? {
                // A mailbox row put back now means the first attempt failed before its push (the row is written
                // beside the message, before any push): this retry finishes the send, pushing what was stored. A
                // retry after it finds the row and only acks, so a client retrying in a loop pushes nothing.
                return Ok(if found.put_back {
                    Settled::Resume(seen)
                } else {
                    Settled::Done(seen)
                });
            }
            if let Some(seq) = self.recorded_group(&seen).await? {
                return Ok(Settled::Done(Claim { seq: Some(seq), ..seen }));
            }
            let now = crate::now_ms();
            if seen.lease_until <= now {
                let lease_until = now + self.settings.claim_lease_ms;
                if self.store.take_over(key, &seen, lease_until).await? {
                    return Ok(Settled::Resume(Claim { lease_until, ..seen }));
                }
            } else {
                if now + wait_ms + DEADLINE_MARGIN_MS >= deadline {
                    return Err(BackendError::Timeout("a concurrent attempt of the same send"));
                }
                tokio::time::sleep(Duration::from_millis(wait_ms as u64)).await;
                wait_ms = (wait_ms * 2).min(400);
            }
            seen = self
                .store
                .read_claim(key)
                .await?
                .ok_or_else(|| BackendError::corrupt("claim", "a claim vanished while a send was waiting on it"))?;
        }
    }

    /// The stored message of a one-on-one claim (a strong read): such a send is done as far as a retry is concerned.
    /// Its mailbox entry is put now if the first attempt stored the message but not the entry.
    async fn stored_direct(&self, claim: &Claim) -> Result<Option<FoundDirect>, BackendError> {
        let Some(Target::To(to)) = &claim.target else {
            return Ok(None);
        };
        self.store.stored_direct(&claim.message_id, to).await
    }

    /// The sequence number of a group claim's message if its send is done: the message is stored and the group's
    /// history holds it (two strong reads, the second needing the first's number; see `complete_group`).
    async fn recorded_group(&self, claim: &Claim) -> Result<Option<u64>, BackendError> {
        let Some(Target::Group(group)) = &claim.target else {
            return Ok(None);
        };
        let Some(seq) = self.store.get_message(&claim.message_id).await?.and_then(|m| m.seq) else {
            return Ok(None);
        };
        let recorded = self.store.recorded_at(group, seq).await?;
        Ok((recorded == Some(claim.message_id)).then_some(seq))
    }
}
