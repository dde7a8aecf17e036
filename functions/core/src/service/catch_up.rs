//! The catch-up after a `sync`. A sync cannot see everything that reached the user around it: the mailbox is a
//! global secondary index, which lags its table by a moment (a one-on-one message stored just before the sync may
//! be missing from it, and its push went to a connection that was not there yet), and a group's fan-out reads
//! presence eventually (a group message sent just after the sync may not find the connection that just opened).
//! Neither is a loss for long (the next sync sees it), but a user who just came back would wait for it. So every
//! first sync page of a connection queues a catch-up, delayed a little longer than that lag. It pushes to that
//! connection the one-on-one messages stored shortly before the sync that it did not return, and the group
//! messages after what the sync covered; some may arrive twice, and clients drop repeats by messageId.

use super::{App, Caller, delivery::connections_of};
use crate::{
    error::{BackendError, Failure},
    frames::{ServerFrame, Target},
    ids::MessageId,
    jobs::{CatchUpJob, Job},
    model::Presence,
    ports::{GroupStore, JobQueue, PresenceStore, PullStore, Pusher},
};
use std::collections::HashMap;
use tracing::{info, warn};

/// Messages one catch-up pushes at most (from the mailbox, and from each group).
const CATCH_UP_MAX: usize = 100;

impl<S, P, Q> App<S, P, Q>
where
    S: GroupStore + PullStore + PresenceStore,
    P: Pusher,
    Q: JobQueue,
{
    /// `sync` on a connection: the page, and on the first page the catch-up of what it could not see yet.
    pub async fn sync_connection(
        &self,
        caller: &Caller,
        cursor: Option<&str>,
        now: i64,
    ) -> Result<ServerFrame, Failure> {
        let (page, seen) = self.sync_page(&caller.user, cursor, now).await?;
        if cursor.is_none() {
            let delay = self.settings.catch_up_delay_secs.max(0);
            let job = Job::CatchUp(CatchUpJob {
                user: caller.user.clone(),
                connection: caller.connection.clone(),
                at: now,
                // What was stored within the delay before the sync may not have been visible to it.
                since: now - i64::from(delay) * 1000,
                inbox_after: seen.inbox_to.flatten(),
                groups: seen.groups,
                delay,
            });
            if let Err(e) = self.queue.enqueue(&job).await {
                // The sync itself is whole; what it missed comes with the next one.
                warn!(error = %e, user = %caller.user, "could not queue a sync's catch-up");
            }
        }
        Ok(page)
    }

    /// The catch-up consumer: pushes to the connection what its sync could not see (see the module's docs).
    pub async fn catch_up(&self, job: &CatchUpJob, now: i64) -> Result<(), BackendError> {
        let user = &job.user;
        // One-on-one: stored before the sync (later ones were pushed to this connection by their sender, who
        // reads presence strongly after storing), and not returned by it.
        let floor = MessageId::floor(job.since).max(job.inbox_after.unwrap_or(MessageId::floor(0)));
        let (inbox, groups) = futures::try_join!(
            self.store.inbox(user, Some(&floor), CATCH_UP_MAX),
            self.store.groups_of(user)
        )?;
        let mut messages: Vec<_> = inbox
            .0
            .into_iter()
            .filter(|m| m.timestamp() <= job.at && !m.expired(now))
            .collect();
        // Groups: after what the sync covered (everything unacknowledged, for a group joined since).
        for (group, member) in &groups {
            let covered = job
                .groups
                .iter()
                .find(|(g, _)| *g == group.id)
                .map_or(member.last_ack_seq, |(_, seq)| (*seq).max(member.last_ack_seq));
            if group.last_seq <= covered {
                continue;
            }
            let entries = self
                .store
                .group_entries(&group.id, covered, group.last_seq, CATCH_UP_MAX)
                .await?;
            // Not the user's own: this connection may have sent them (and got the ack instead of a push). Another
            // device of the sender that fan-out missed sees them in history.
            let ids: Vec<MessageId> = entries
                .iter()
                .filter(|e| e.sender != *user)
                .map(|e| e.message_id)
                .collect();
            if !ids.is_empty() {
                let bodies = self.store.messages(&ids).await?;
                messages.extend(
                    ids.iter()
                        .filter_map(|id| bodies.get(id))
                        .filter(|m| !m.expired(now))
                        .cloned(),
                );
            }
        }
        if messages.is_empty() {
            return Ok(());
        }
        messages.sort_by_key(|m| (m.timestamp(), m.id));
        // Only this connection: the others got these messages by push, or catch up after their own sync.
        let presence = HashMap::from([(
            user.clone(),
            Presence {
                connections: [(job.connection.clone(), i64::MAX)].into(),
                ..Presence::default()
            },
        )]);
        let targets = connections_of(&presence, &[user], None, now);
        let mut pushed = 0;
        for m in &messages {
            let mut push = m.to_push();
            self.link(std::slice::from_mut(&mut push), now).await?;
            let report = self.deliver(&targets, &ServerFrame::Message(push).to_json(), now).await;
            pushed += report.delivered;
            if report.gone > 0 {
                break;
            }
        }
        let grouped = messages.iter().filter(|m| matches!(m.target, Target::Group(_))).count();
        info!(user = %user, pushed, grouped, "sync catch-up");
        Ok(())
    }
}
