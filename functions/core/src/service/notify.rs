//! The notify consumer: a message stored for a user with no live connection becomes a push notification on the
//! user's devices a few seconds later (the queue's delay: a user who reconnects meanwhile gets it by sync and no
//! notification), at most one per conversation per minute. Messages within the minute are counted and sent when
//! it ends, as one ("alice: 3 new messages"), by a follow-up job. Never the body. A group message notifies about
//! the group ("book club: 5 new messages"), coalesced per group whoever wrote.
//!
//! Only groups that fit one fan-out chunk (100 members by default) notify: the fan-out queues one job per away
//! member, and a bigger group's every message would queue hundreds; big groups are muted, as in the big
//! messengers (`docs/protocol.md`).

use super::App;
use crate::{
    error::BackendError,
    jobs::{Job, NotifyJob},
    model::FriendState,
    notify::{Notification, Published, Topic},
    ports::{DeviceStore, FriendStore, GroupStore, JobQueue, PresenceStore},
};
use tracing::info;

impl<S, P, Q> App<S, P, Q>
where
    S: DeviceStore + PresenceStore + FriendStore + GroupStore,
    Q: JobQueue,
{
    pub async fn notify(&self, job: &NotifyJob, now: i64) -> Result<(), BackendError> {
        let (user, from) = (&job.notify, &job.from);
        // Most users have no device registered (web clients): one read, and a mark on their presence once, so
        // sends and fan-outs stop queueing notifications for them until they register one.
        let devices = self.store.devices(user).await?;
        if devices.is_empty() {
            return self.store.mark_devices(user, false).await;
        }
        let topic = match &job.group {
            Some(g) => Topic::Group(g.clone()),
            None => Topic::Peer(from.clone()),
        };
        let state = self.store.note_message(user, &topic, u64::from(!job.follow_up)).await?;
        // Who may still be told: not a blocked sender; in a group, a member still (its name is the title).
        let standing = async {
            match &job.group {
                None => Ok((
                    self.store.standing(user, from).await? != Some(FriendState::Blocked),
                    None,
                )),
                Some(g) => match self.store.membership(g, user).await? {
                    (Some(group), Some(_)) => Ok((true, Some(group.name.as_str().to_owned()))),
                    _ => Ok((false, None)),
                },
            }
        };
        let (presence, (allowed, group_name)) =
            futures::try_join!(self.store.presence_latest(std::slice::from_ref(user)), standing)?;
        let online = presence.get(user).is_some_and(|p| p.live(now).next().is_some());
        if online || !allowed {
            // Nothing to tell: what was counted is seen (online), or never to be told. Start the count afresh.
            self.store
                .take_pending(user, &topic, state.last_at, state.last_at.unwrap_or(0))
                .await?;
            return Ok(());
        }
        let every = self.settings.notify_every_ms;
        let due_at = state.last_at.map_or(now, |t| t + every);
        if now < due_at {
            // Within the minute: one follow-up sends what it gathers when the minute ends.
            if job.follow_up || self.store.schedule_follow_up(user, &topic).await? {
                let delay = ((due_at - now + 999) / 1000).clamp(1, 900) as i32;
                let follow_up = NotifyJob {
                    follow_up: true,
                    delay,
                    ..job.clone()
                };
                self.queue.enqueue(&Job::Notify(follow_up)).await?;
            }
            return Ok(());
        }
        let Some(count) = self.store.take_pending(user, &topic, state.last_at, now).await? else {
            return Ok(()); // another consumer notified in between
        };
        if count == 0 {
            return Ok(());
        }
        let n = match (&job.group, &group_name) {
            (Some(g), Some(name)) => Notification::of_group(user, g, name.as_str(), count),
            _ => Notification::of(user, from, count),
        };
        for d in &devices {
            if self.notifier.publish(d, &n).await? == Published::Disabled {
                info!(
                    platform = d.platform.as_str(),
                    "a device the platform reports disabled is forgotten"
                );
                self.forget_device(user, d).await;
            }
        }
        Ok(())
    }
}
