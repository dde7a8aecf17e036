//! The fan-out consumer: a group message to every online member's connections. A group that fits one chunk is
//! pushed by its send instead (`send.rs`, `complete_group`), through the same `push_to_members`; the queue carries
//! the larger groups, changes, and a small group's push that failed.
//!
//! A root job reads once the ids of those who were members when the message was sent; groups larger than one chunk are split into chunk jobs queued back on
//! the fan-out queue (10 per SendMessageBatch), so delivery runs in parallel invocations. Each chunk reads its
//! members' presence (BatchGetItem, 100 keys per call) and posts concurrently to every live connection but the one
//! the message was sent from. A redelivered job may push again; it never skips a member.

use super::{App, delivery::connections_of};
use crate::{
    error::BackendError,
    frames::{ServerFrame, Target},
    ids::UserId,
    jobs::{FanoutJob, Job, NotifyJob},
    ports::{GroupStore, JobQueue, PresenceStore, Pusher},
};
use tracing::info;

impl<S, P, Q> App<S, P, Q>
where
    S: PresenceStore + GroupStore,
    P: Pusher,
    Q: JobQueue,
{
    pub async fn fanout(&self, job: &FanoutJob, now: i64) -> Result<(), BackendError> {
        // Only a group that fits one chunk notifies its away members (one job each; see `notify.rs`).
        let mut small = false;
        let members = match &job.members {
            Some(chunk) => chunk.clone(),
            None => {
                let Target::Group(group) = &job.message.target else {
                    return Err(BackendError::corrupt(
                        "fan-out job",
                        "a fan-out job for a one-on-one message",
                    ));
                };
                // Only those who were members when it was sent: someone added since sees nothing from before.
                let seq = job.message.seq.unwrap_or(u64::MAX);
                let all = self.store.recipients(group, seq).await?;
                let chunk = self.settings.fanout_chunk.max(1);
                if all.len() > chunk {
                    let jobs: Vec<Job> = all[chunk..]
                        .chunks(chunk)
                        .map(|c| {
                            Job::Fanout(FanoutJob {
                                members: Some(c.to_vec()),
                                ..job.clone()
                            })
                        })
                        .collect();
                    self.queue.enqueue_all(&jobs).await?;
                    info!(%group, members = all.len(), chunks = jobs.len() + 1, "fan-out split");
                }
                small = all.len() <= chunk;
                all.into_iter().take(chunk).collect()
            }
        };
        self.push_to_members(job, &members, small, now).await
    }

    /// Pushes the job's frame to `members`' live connections; for a whole group that fits one chunk (`whole`),
    /// also queues the notifications of its away members. The fan-out consumer's chunk, and a small group's
    /// send itself (`send.rs`).
    pub(super) async fn push_to_members(
        &self,
        job: &FanoutJob,
        members: &[UserId],
        whole: bool,
        now: i64,
    ) -> Result<(), BackendError> {
        let away = self.deliver_to_members(job, members, now).await?;
        if whole && job.change.is_none() && self.settings.notify_offline && !away.is_empty() {
            self.notify_away(job, &away).await;
        }
        Ok(())
    }

    /// Queues a notification job for each member with no live connection (best effort, like a one-on-one
    /// send's: a notification is not worth redelivering the fan-out for).
    async fn notify_away(&self, job: &FanoutJob, away: &[UserId]) {
        let Target::Group(group) = &job.message.target else {
            return;
        };
        let jobs: Vec<Job> = away
            .iter()
            .map(|u| {
                Job::Notify(NotifyJob {
                    notify: u.clone(),
                    from: job.message.from.clone(),
                    group: Some(group.clone()),
                    follow_up: false,
                    delay: 0,
                })
            })
            .collect();
        if let Err(e) = self.queue.enqueue_all(&jobs).await {
            tracing::warn!(error = %e, "the notifications of away group members were not queued");
        }
    }

    /// Pushes to the members' live connections; the members other than the sender worth notifying
    /// ([`crate::model::Presence::notifiable`]).
    async fn deliver_to_members(
        &self,
        job: &FanoutJob,
        members: &[UserId],
        now: i64,
    ) -> Result<Vec<UserId>, BackendError> {
        // The sender's own other devices, read strongly: a device that connected a moment ago would miss what it
        // sent from another (its catch-up skips one's own messages). One read unit per message, in the chunk that
        // holds the sender, beside the members' read; the other members' fresh connections get it from their
        // sync's catch-up.
        let sender = &job.message.from;
        let senders = async {
            if members.contains(sender) {
                self.store.presence_latest(std::slice::from_ref(sender)).await
            } else {
                Ok(Default::default())
            }
        };
        let (presence, senders) = futures::join!(self.store.presence(members), senders);
        let mut presence = presence?;
        presence.extend(senders?);
        let refs: Vec<&UserId> = members.iter().collect();
        let targets = connections_of(&presence, &refs, job.exclude.as_ref(), now);
        let frame = match &job.change {
            Some(change) => change.to_json(),
            None => {
                // Signed here, not at send: a job delayed or redelivered still carries URLs that work.
                let mut push = job.message.clone();
                self.link(std::slice::from_mut(&mut push), now).await?;
                ServerFrame::Message(*push).to_json()
            }
        };
        let report = self.deliver(&targets, &frame, now).await;
        info!(message_id = %job.message.message_id, members = members.len(), delivered = report.delivered, gone = report.gone, failed = report.failed, "fan-out");
        if report.failed > 0 {
            // Some online member may have missed it: retry the chunk (a repeat push is dropped by clients).
            return Err(BackendError::Partial {
                what: "posts",
                failed: report.failed,
                of: targets.len(),
            });
        }
        Ok(members
            .iter()
            .filter(|m| *m != sender && presence.get(*m).is_none_or(|p| p.notifiable(now)))
            .cloned()
            .collect())
    }
}
