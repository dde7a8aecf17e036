//! `send`: idempotent on (sender, clientMsgId), even for concurrent retries.
//!
//! The first attempt claims the key (a conditional put) with a fresh message id and a lease, stores the message,
//! pushes it, queues its follow-up job and marks the claim done. A retry that finds the claim:
//! - done: answers with the same ack and delivers nothing;
//! - unfinished, lease running: waits for the attempt that holds it (a concurrent retry);
//! - unfinished, lease over: the first attempt failed or died; the retry takes the claim over and finishes the same
//!   message (same id and timestamp; a message already stored wins over what the retry carries).
//!
//! The lease is longer than the function timeout, so a takeover never races a live attempt.

use super::{App, delivery::connections_of};
use crate::{
    error::{BackendError, Failure, bad_request, not_found},
    frames::{AckReply, Send, ServerFrame, Target},
    ids::{ConnectionId, MessageId, UserId},
    jobs::{HistoryJob, Job},
    model::{Claim, ClaimKey, StoredMessage},
    ports::{Directory, JobQueue, MessageStore, PresenceStore, Pusher},
};
use std::time::Duration;
use tracing::{info, warn};

/// Who sent a frame: the authorizer's user (never a field of the frame) and the connection it came on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user: UserId,
    pub connection: ConnectionId,
}

/// What to do with a claim found taken.
enum Settled {
    /// The send completed before: answer with its ack.
    Done(Claim),
    /// This attempt now holds the claim and must finish the send.
    Resume(Claim),
}

/// How close to the invocation deadline a waiting retry gives up (and answers `unavailable`).
const DEADLINE_MARGIN_MS: i64 = 500;

impl<S, P, Q> App<S, P, Q>
where
    S: Directory + PresenceStore + MessageStore,
    P: Pusher,
    Q: JobQueue,
{
    /// Handles a `send`; `deadline` is the invocation's deadline (epoch ms).
    pub async fn send(&self, caller: &Caller, frame: &Send, now: i64, deadline: i64) -> Result<AckReply, Failure> {
        match &frame.target {
            Target::To(to) => self.send_direct(caller, frame, to, now, deadline).await,
            Target::Group(_) => Err(bad_request("group messages are not supported yet")),
        }
    }

    async fn send_direct(
        &self,
        caller: &Caller,
        frame: &Send,
        to: &UserId,
        now: i64,
        deadline: i64,
    ) -> Result<AckReply, Failure> {
        if *to == caller.user {
            return Err(bad_request("`to` must be another user"));
        }
        let key = ClaimKey::new(&caller.user, &frame.client_msg_id);
        let fresh = Claim {
            message_id: MessageId::generate(now),
            lease_until: now + self.settings.claim_lease_ms,
            done: false,
        };
        let participants = [to.clone(), caller.user.clone()];
        // Independent: the recipient lookup (existence and connections) and the claim.
        let (lookup, claimed) = futures::join!(
            self.store.lookup(&participants),
            self.store
                .claim(&key, &fresh, now / 1000 + self.settings.claim_ttl_secs)
        );
        let claimed = claimed?;
        let lookup = match lookup {
            Ok(l) => l,
            Err(e) => {
                if claimed.is_none() {
                    self.release_quietly(&key, &fresh).await;
                }
                return Err(e.into());
            }
        };
        if !lookup.contains_key(to) {
            if claimed.is_none()
                && let Err(e) = self.store.forget(&key, &fresh).await
            {
                warn!(error = %e, "could not drop the claim of a refused send");
            }
            return Err(not_found(format!("no user `{to}`")));
        }
        let claim = match claimed {
            None => fresh,
            Some(existing) => match self.settle(&key, existing, deadline).await? {
                Settled::Done(c) => return Ok(ack(frame, &c, None)),
                Settled::Resume(c) => {
                    info!(client_msg_id = %frame.client_msg_id, "resuming an unfinished send");
                    c
                }
            },
        };
        let message = StoredMessage {
            id: claim.message_id,
            from: caller.user.clone(),
            target: Target::To(to.clone()),
            body: frame.body.clone(),
            client_msg_id: frame.client_msg_id.clone(),
            seq: frame.seq,
            delivered_at: None,
        };
        match self.complete_direct(caller, &key, message, lookup, now).await {
            Ok(()) => Ok(ack(frame, &claim, None)),
            Err(e) => {
                self.release_quietly(&key, &claim).await;
                Err(e.into())
            }
        }
    }

    /// Stores, pushes, queues indexing and marks the claim done.
    async fn complete_direct(
        &self,
        caller: &Caller,
        key: &ClaimKey,
        message: StoredMessage,
        mut presence: std::collections::HashMap<UserId, crate::model::Presence>,
        now: i64,
    ) -> Result<(), BackendError> {
        let stored = self
            .store
            .put_message(&message, self.settings.message_expiry(message.timestamp()))
            .await?;
        let message = stored.unwrap_or(message);
        let Target::To(to) = &message.target else {
            return Err(BackendError::corrupt(
                "claim",
                "a one-on-one claim points at a group message",
            ));
        };
        if !presence.contains_key(to) {
            // A retry carried another recipient than the stored first attempt: deliver what was stored.
            presence = self.store.lookup(&[to.clone(), caller.user.clone()]).await?;
        }
        let targets = connections_of(&presence, &[to, &caller.user], Some(&caller.connection), now);
        let push = ServerFrame::Message(message.to_push()).to_json();
        let job = Job::History(HistoryJob {
            message_id: message.id,
            from: message.from.clone(),
            to: to.clone(),
            preview: message.body.preview(),
        });
        let (report, queued) = futures::join!(self.deliver(&targets, &push, now), self.queue.enqueue(&job));
        queued?;
        info!(message_id = %message.id, delivered = report.delivered, gone = report.gone, failed = report.failed, "sent");
        self.store.finish(key).await
    }

    /// Decides what a retry does with a claim it found taken.
    async fn settle(&self, key: &ClaimKey, mut seen: Claim, deadline: i64) -> Result<Settled, BackendError> {
        let mut wait_ms = 20;
        loop {
            if seen.done {
                return Ok(Settled::Done(seen));
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

    async fn release_quietly(&self, key: &ClaimKey, claim: &Claim) {
        if let Err(e) = self.store.release(key, claim.lease_until).await {
            warn!(error = %e, "could not release a send claim; a retry waits for its lease");
        }
    }
}

fn ack(frame: &Send, claim: &Claim, seq: Option<u64>) -> AckReply {
    AckReply {
        client_msg_id: frame.client_msg_id.clone(),
        message_id: claim.message_id,
        timestamp: claim.message_id.timestamp(),
        seq,
        request_id: None,
    }
}
