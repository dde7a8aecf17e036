//! The notify consumer: a message stored for a user with no live connection becomes a push notification on the
//! user's devices a few seconds later (the queue's delay: a user who reconnects meanwhile gets it by sync and no
//! notification), at most one per conversation per minute. Messages within the minute are counted and sent when
//! it ends, as one ("alice: 3 new messages"), by a follow-up job. Never the body.

use super::App;
use crate::{
    error::BackendError,
    jobs::{Job, NotifyJob},
    model::FriendState,
    notify::{Notification, Published},
    ports::{DeviceStore, FriendStore, JobQueue, PresenceStore},
};
use tracing::info;

impl<S, P, Q> App<S, P, Q>
where
    S: DeviceStore + PresenceStore + FriendStore,
    Q: JobQueue,
{
    pub async fn notify(&self, job: &NotifyJob, now: i64) -> Result<(), BackendError> {
        let (user, from) = (&job.notify, &job.from);
        // Most users have no device registered (web clients): one read, and nothing written for them.
        let devices = self.store.devices(user).await?;
        if devices.is_empty() {
            return Ok(());
        }
        let state = self.store.note_message(user, from, u64::from(!job.follow_up)).await?;
        let (presence, standing) = futures::try_join!(
            self.store.presence_latest(std::slice::from_ref(user)),
            self.store.standing(user, from),
        )?;
        let online = presence.get(user).is_some_and(|p| p.live(now).next().is_some());
        if online || standing == Some(FriendState::Blocked) {
            // Nothing to tell: what was counted is seen (online), or never to be told. Start the count afresh.
            self.store
                .take_pending(user, from, state.last_at, state.last_at.unwrap_or(0))
                .await?;
            return Ok(());
        }
        let every = self.settings.notify_every_ms;
        let due_at = state.last_at.map_or(now, |t| t + every);
        if now < due_at {
            // Within the minute: one follow-up sends what it gathers when the minute ends.
            if job.follow_up || self.store.schedule_follow_up(user, from).await? {
                let delay = ((due_at - now + 999) / 1000).clamp(1, 900) as i32;
                let follow_up = NotifyJob {
                    notify: user.clone(),
                    from: from.clone(),
                    follow_up: true,
                    delay,
                };
                self.queue.enqueue(&Job::Notify(follow_up)).await?;
            }
            return Ok(());
        }
        let Some(count) = self.store.take_pending(user, from, state.last_at, now).await? else {
            return Ok(()); // another consumer notified in between
        };
        if count == 0 {
            return Ok(());
        }
        let n = Notification::of(user, from, count);
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
