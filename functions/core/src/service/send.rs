//! `send`: idempotent on (sender, clientMsgId), even for concurrent retries, one-on-one and in groups.
//!
//! The first attempt claims the key (a conditional put) with a fresh message id and a lease, stores the message,
//! pushes it (a group's here when the group fits one fan-out chunk, through the fan-out queue otherwise) and queues
//! its follow-up work. A retry that finds the claim:
//! - done (the send's work is all there, see below): answers with the same ack and delivers nothing;
//! - unfinished, lease running: waits for the attempt that holds it (a concurrent retry);
//! - unfinished, lease over: the first attempt failed or died; the retry takes the claim over and finishes the same
//!   message (same id and timestamp, and in a group the same sequence number if one was taken and stored; a
//!   message already stored wins over what the retry carries).
//!
//! The lease is longer than the function timeout, so a takeover never races a live attempt.
//!
//! One-on-one sends write no done mark: their stored message is the mark. A retry that finds the claim and the
//! message it names (one strong read) answers with the ack. Nothing queues the indexing: the index function
//! consumes the message's insert from the Messages table's stream, which holds it whether or not this attempt
//! lives on, so a client retrying one send in a loop costs a read per frame. The frame's rate-limit count runs
//! alongside the claim and the lookup rather than before them (a refused frame drops the claim it made). That is
//! three sequential round trips before the ack (count with claim and lookup; message; the pushes).
//!
//! Group sends write no done mark either: their GroupHistory row, written after the push (or the fan-out job), is
//! the mark. A retry reads the stored message (for its sequence number) and the row at that number; with both it
//! answers with the ack and pushes nothing. Claims marked `done` by earlier releases are still honoured.

use super::{
    App,
    delivery::{DeliveryReport, connections_of},
    settle::Settled,
};
use crate::{
    error::{BackendError, Failure, bad_request, forbidden, not_found},
    frames::{AckReply, LastMessage, RecipientState, SendFrame, ServerFrame, Status, Target},
    ids::{ConnectionId, GroupId, MessageId, UserId},
    jobs::{FanoutJob, Job, NotifyJob},
    model::{Claim, ClaimKey, FriendState, Mark, Presence, StoredMessage},
    ports::{Directory, FrameCounter, FriendStore, GroupStore, JobQueue, MessageStore, PresenceStore, Pusher},
};
use std::{collections::HashMap, future::Future};
use tracing::{info, warn};

/// Who sent a frame: the authorizer's user (never a field of the frame) and the connection it came on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user: UserId,
    pub connection: ConnectionId,
}

/// How a send starts: done before (answer with the ack), or this attempt must carry it out.
enum Start<C> {
    Done(Claim),
    Go { claim: Claim, resumed: bool, checked: C },
}

impl<S, P, Q> App<S, P, Q>
where
    S: Directory + PresenceStore + MessageStore + GroupStore + FriendStore + FrameCounter,
    P: Pusher,
    Q: JobQueue,
{
    /// Handles a `send`; `deadline` is the invocation's deadline (epoch ms).
    pub async fn send(&self, caller: &Caller, frame: &SendFrame, now: i64, deadline: i64) -> Result<AckReply, Failure> {
        match &frame.target {
            Target::To(to) => self.send_direct(caller, frame, to, now, deadline).await,
            Target::Group(group) => self.send_group(caller, frame, group, now, deadline).await,
        }
    }

    /// Claims the send while `check` runs and the frame is counted against the sender's rate limit (the three
    /// are independent), and settles a claim found taken.
    async fn start<C>(
        &self,
        sender: &UserId,
        key: &ClaimKey,
        target: &Target,
        now: i64,
        deadline: i64,
        check: impl Future<Output = Result<C, Failure>>,
    ) -> Result<Start<C>, Failure> {
        let fresh = Claim {
            message_id: MessageId::generate(now),
            lease_until: now + self.settings.claim_lease_ms,
            done: false,
            seq: None,
            target: Some(target.clone()),
        };
        if self.known_over_limit(sender, now) {
            // Refused before any write: a client hammering past its limit costs no claim.
            return Err(super::rate_limited(&self.settings));
        }
        let (checked, claimed, admitted) = futures::join!(
            check,
            self.store.claim(key, &fresh, now / 1000 + self.settings.claim_ttl_secs),
            self.admitted(sender, now)
        );
        let claimed = claimed?;
        // Over the limit: refused like a check that failed, so the claim this attempt made goes again.
        let checked = admitted.and(checked);
        let checked = match checked {
            Ok(c) => c,
            Err(failure) => {
                if claimed.is_none() {
                    match &failure {
                        // Refused: the key was never used; a corrected retry may use it.
                        Failure::Rejected(_) => {
                            if let Err(e) = self.store.forget(key, &fresh).await {
                                warn!(error = %e, "could not drop the claim of a refused send");
                            }
                        }
                        Failure::Backend(_) => self.release_quietly(key, &fresh).await,
                    }
                }
                return Err(failure);
            }
        };
        match claimed {
            None => Ok(Start::Go {
                claim: fresh,
                resumed: false,
                checked,
            }),
            // The same clientMsgId for another conversation is a client bug (or a reused id): acking it with the
            // first message's id would drop this message without a word.
            Some(existing) if existing.target.as_ref().is_some_and(|t| t != target) => Err(bad_request(
                "`clientMsgId` was already used for a message to another conversation; a new message needs a new one",
            )),
            Some(existing) => match self.settle(key, existing, deadline).await? {
                Settled::Done(c) => Ok(Start::Done(c)),
                Settled::Resume(c) => {
                    info!(claim = key.as_str(), "resuming an unfinished send");
                    Ok(Start::Go {
                        claim: c,
                        resumed: true,
                        checked,
                    })
                }
            },
        }
    }

    /// Runs a group send's `work`, releasing the claim after a failure so a retry can resume at once. Nothing is
    /// written after a success: the GroupHistory row `work` puts last is the send's done mark.
    async fn complete(
        &self,
        key: &ClaimKey,
        claim: &Claim,
        work: impl Future<Output = Result<Option<u64>, BackendError>>,
    ) -> Result<Option<u64>, Failure> {
        let result = work.await;
        if result.is_err() {
            self.release_quietly(key, claim).await;
        }
        Ok(result?)
    }

    async fn send_direct(
        &self,
        caller: &Caller,
        frame: &SendFrame,
        to: &UserId,
        now: i64,
        deadline: i64,
    ) -> Result<AckReply, Failure> {
        if *to == caller.user {
            return Err(bad_request("`to` must be another user"));
        }
        let key = ClaimKey::new(&caller.user, &frame.client_msg_id);
        let check = async {
            // The recipient's standing toward the sender: a block drops the message, a friendship lets the ack
            // say the friend is offline. One strong read, alongside the lookup and the attachments' checks.
            let reads = async {
                futures::try_join!(
                    self.store
                        .lookup(std::slice::from_ref(to), std::slice::from_ref(&caller.user)),
                    self.store.standing(to, &caller.user)
                )
                .map_err(Failure::from)
            };
            let ((found, standing), attachments) =
                futures::try_join!(reads, self.check_attachments(&caller.user, &frame.attachments))?;
            if found.contains_key(to) {
                Ok((found, standing, attachments))
            } else {
                Err(not_found(format!("no user `{to}`")))
            }
        };
        let (claim, (presence, standing, attachments)) = match self
            .start(&caller.user, &key, &frame.target, now, deadline, check)
            .await?
        {
            Start::Done(c) => return Ok(ack(frame, &c, None)),
            Start::Go { claim, checked, .. } => (claim, checked),
        };
        if standing == Some(FriendState::Blocked) {
            // Acked as usual and never delivered: nothing reveals the block. The claim makes a retry get the same
            // ack; nothing is stored, so nothing reaches the blocker later either.
            self.complete(&key, &claim, async { Ok(None) }).await?;
            info!("a message to a user who blocked its sender was dropped");
            return Ok(ack(frame, &claim, None));
        }
        let message = StoredMessage {
            seq: frame.seq,
            device: frame.device.clone(),
            expires_at: self.settings.message_expiry(claim.message_id.timestamp()),
            attachments,
            ..StoredMessage::new(
                claim.message_id,
                caller.user.clone(),
                Target::To(to.clone()),
                frame.body.clone(),
                frame.client_msg_id.clone(),
            )
        };
        let reached = match self.complete_direct(caller, message, presence, now).await {
            Ok(reached) => reached,
            Err(e) => {
                self.release_quietly(&key, &claim).await;
                return Err(e.into());
            }
        };
        let mut reply = ack(frame, &claim, None);
        if standing == Some(FriendState::Friend) && reached.is_offline() {
            reply.recipient = Some(RecipientState {
                status: Status::Offline,
                last_seen: reached.last_seen,
            });
        }
        Ok(reply)
    }

    /// Stores a one-on-one message, then pushes it. Its indexing is not queued here: the index function consumes
    /// the insert from the Messages stream, which no failure of this attempt can lose. Whether the recipient had a
    /// live connection, and when it was last seen.
    async fn complete_direct(
        &self,
        caller: &Caller,
        message: StoredMessage,
        mut presence: HashMap<UserId, Presence>,
        now: i64,
    ) -> Result<Reached, BackendError> {
        let stored = self.store.put_message(&message).await?;
        let message = stored.unwrap_or(message);
        let Target::To(to) = &message.target else {
            return Err(BackendError::corrupt(
                "claim",
                "a one-on-one claim points at a group message",
            ));
        };
        if !presence.contains_key(to) {
            // A retry carried another recipient than the stored first attempt: deliver what was stored.
            presence = self
                .store
                .lookup(std::slice::from_ref(to), std::slice::from_ref(&caller.user))
                .await?;
        }
        let targets = connections_of(&presence, &[to, &caller.user], Some(&caller.connection), now);
        let mut push = message.to_push();
        self.link(std::slice::from_mut(&mut push), now).await?;
        let push = ServerFrame::Message(push).to_json();
        // A recipient with no live connection may be notified on its devices (the consumer decides, after the
        // queue's delay, on a strong read), unless known to have none (most web users): the job would find none.
        // Best effort: a notification is not worth failing the send for.
        let notifiable = presence.get(to).is_none_or(|p| p.notifiable(now));
        let notify = async {
            if notifiable && self.settings.notify_offline {
                let job = Job::Notify(NotifyJob {
                    notify: to.clone(),
                    from: message.from.clone(),
                    group: None,
                    follow_up: false,
                    delay: 0,
                });
                if let Err(e) = self.queue.enqueue(&job).await {
                    warn!(error = %e, "the notification of an offline recipient was not queued");
                }
            }
        };
        // No done mark: the stored message is one (see the module's comment).
        let ((report, reached), ()) = futures::join!(self.deliver_direct(to, caller, &targets, &push, now), notify);
        info!(message_id = %message.id, delivered = report.delivered, gone = report.gone, failed = report.failed, "sent");
        Ok(Reached {
            // The strong re-read's, or the lookup's if that failed.
            last_seen: reached.last_seen.or(presence.get(to).and_then(|p| p.last_seen)),
            ..reached
        })
    }

    /// Pushes a stored one-on-one message to `targets` (the connections the lookup found before it was stored)
    /// and to any connection the recipient opened since. The lookup ran before the message was stored, so a
    /// recipient who reconnected in between, and whose `sync` ran before the message existed, would otherwise
    /// get it from neither: the recipient's presence is read again, now that the message is stored, alongside
    /// the first pushes, strongly consistent (an eventual read could miss that very connection). Costs one read
    /// unit; delays no push. Also whether the recipient had a live connection in either read.
    pub(super) async fn deliver_direct(
        &self,
        to: &UserId,
        sender: &Caller,
        targets: &[(UserId, ConnectionId)],
        push: &str,
        now: i64,
    ) -> (DeliveryReport, Reached) {
        // The sender's own other devices too: the lookup read their presence eventually, and one that connected
        // a moment ago would otherwise miss what it sent from another device.
        let both = [to.clone(), sender.user.clone()];
        let (mut report, again) = futures::join!(self.deliver(targets, push, now), self.store.presence_latest(&both));
        let last_seen = again.as_ref().ok().and_then(|p| p.get(to)).and_then(|p| p.last_seen);
        let late: Vec<(UserId, ConnectionId)> = match again {
            Ok(p) => connections_of(&p, &[to, &sender.user], Some(&sender.connection), now)
                .into_iter()
                .filter(|t| !targets.contains(t))
                .collect(),
            Err(e) => {
                warn!(error = %e, "could not re-read the recipient's connections; a reconnect in flight syncs later");
                Vec::new()
            }
        };
        let reached = Reached {
            connections: targets.iter().chain(&late).filter(|(u, _)| u == to).count(),
            last_seen,
        };
        if !late.is_empty() {
            let more = self.deliver(&late, push, now).await;
            report.delivered += more.delivered;
            report.gone += more.gone;
            report.failed += more.failed;
        }
        (report, reached)
    }

    async fn send_group(
        &self,
        caller: &Caller,
        frame: &SendFrame,
        group: &GroupId,
        now: i64,
        deadline: i64,
    ) -> Result<AckReply, Failure> {
        let key = ClaimKey::new(&caller.user, &frame.client_msg_id);
        let check = async {
            let member = async { self.store.membership(group, &caller.user).await.map_err(Failure::from) };
            match futures::try_join!(member, self.check_attachments(&caller.user, &frame.attachments))? {
                ((None, _), _) => Err(not_found(format!("no group `{group}`"))),
                ((Some(_), None), _) => Err(forbidden("not a member of this group")),
                ((Some(g), Some(_)), attachments) => Ok((attachments, g.member_count)),
            }
        };
        let (claim, resumed, (attachments, member_count)) = match self
            .start(&caller.user, &key, &frame.target, now, deadline, check)
            .await?
        {
            Start::Done(c) => return Ok(ack(frame, &c, c.seq)),
            Start::Go {
                claim,
                resumed,
                checked,
            } => (claim, resumed, checked),
        };
        let work = async {
            // A resumed send reuses the sequence its stored message holds: a retry never burns a number.
            let stored = if resumed {
                self.store.get_message(&claim.message_id).await?
            } else {
                None
            };
            let message = match stored {
                Some(m) => m,
                None => {
                    let message = StoredMessage {
                        expires_at: self.settings.message_expiry(claim.message_id.timestamp()),
                        attachments,
                        ..StoredMessage::new(
                            claim.message_id,
                            caller.user.clone(),
                            Target::Group(group.clone()),
                            frame.body.clone(),
                            frame.client_msg_id.clone(),
                        )
                    };
                    let last = LastMessage {
                        message_id: claim.message_id,
                        from: caller.user.clone(),
                        preview: message.preview(),
                        timestamp: claim.message_id.timestamp(),
                        deleted: false,
                    };
                    let Some(n) = self.store.next_seq(group, &last).await? else {
                        return Err(BackendError::corrupt("group", "the group was deleted during the send"));
                    };
                    StoredMessage {
                        seq: Some(n),
                        ..message
                    }
                }
            };
            let seq = message.seq;
            let small = member_count <= self.settings.fanout_chunk as u64;
            self.complete_group(caller, message, small, now).await.map(|()| seq)
        };
        let seq = self.complete(&key, &claim, work).await?;
        Ok(ack(frame, &claim, seq))
    }

    /// Stores a group message, marks the group read for its sender up to it, pushes it to the members (a `small`
    /// group, one chunk, here; a larger one through the fan-out queue) and then writes the message's GroupHistory
    /// row, in that order: the row is the send's done mark (a retry that finds it answers with the ack and pushes
    /// nothing; one that does not resumes, and a second push is dropped by the clients' `messageId`). O(1) writes
    /// whatever the group's size.
    ///
    /// Why a small group is pushed here: through the queue its message cost an SQS send, receive and delete and
    /// a fan-out invocation, and waited for the queue's poll, to reach a handful of connections; here the
    /// members' query runs beside the message's write, so the ack waits one round trip more (their presence)
    /// and the push four fewer. If the push here fails, the job is queued as before.
    async fn complete_group(
        &self,
        caller: &Caller,
        message: StoredMessage,
        small: bool,
        now: i64,
    ) -> Result<(), BackendError> {
        let Target::Group(group) = message.target.clone() else {
            return Err(BackendError::corrupt(
                "claim",
                "a group claim points at a one-on-one message",
            ));
        };
        let group = &group;
        let seq = message.seq.unwrap_or_default();
        // Sending reads the group: one's own messages never count as unread (unread = last_seq - last_read_seq).
        let recipients = async {
            if small {
                Some(self.store.recipients(group, seq).await)
            } else {
                None
            }
        };
        let (stored, marked, recipients) = futures::join!(
            self.store.put_message(&message),
            self.store.mark(group, &caller.user, Mark::Read, seq),
            recipients,
        );
        let message = stored?.unwrap_or(message);
        marked?;
        let job = FanoutJob {
            message: Box::new(message.to_push()),
            exclude: Some(caller.connection.clone()),
            members: None,
            change: None,
        };
        let pushed_here = match recipients {
            // (A group that grew past one chunk since the check goes through the queue, which splits it.)
            Some(Ok(members)) if members.len() <= self.settings.fanout_chunk => {
                match self.push_to_members(&job, &members, true, now).await {
                    Ok(()) => true,
                    Err(e) => {
                        warn!(error = %e, %group, "a small group's push failed at send; queued for the fan-out");
                        false
                    }
                }
            }
            Some(Err(e)) => {
                warn!(error = %e, %group, "a small group's members could not be read at send; queued");
                false
            }
            Some(Ok(_)) | None => false,
        };
        if !pushed_here {
            self.queue.enqueue(&Job::Fanout(job)).await?;
        }
        self.store.record_group_message(&message).await?;
        info!(message_id = %message.id, %group, seq, "sent to group");
        Ok(())
    }

    async fn release_quietly(&self, key: &ClaimKey, claim: &Claim) {
        if let Err(e) = self.store.release(key, claim.lease_until).await {
            warn!(error = %e, "could not release a send claim; a retry waits for its lease");
        }
    }
}

/// What a one-on-one push found of its recipient.
#[derive(Debug, Clone, Copy)]
pub(super) struct Reached {
    /// The recipient's live connections the message was pushed to.
    connections: usize,
    last_seen: Option<i64>,
}

impl Reached {
    fn is_offline(&self) -> bool {
        self.connections == 0
    }
}

fn ack(frame: &SendFrame, claim: &Claim, seq: Option<u64>) -> AckReply {
    AckReply {
        client_msg_id: frame.client_msg_id.clone(),
        message_id: claim.message_id,
        timestamp: claim.message_id.timestamp(),
        seq,
        recipient: None,
    }
}
