//! Presence: online while a user holds a live connection. A change queues a presence event that the queue delays
//! (a few seconds); the presence-notify consumer re-reads the user's presence and pushes the status to its online
//! friends only if it differs from the status last pushed. A connection that flaps inside the delay pushes nothing.

use super::{App, delivery::connections_of};
use crate::{
    error::{BackendError, Failure},
    frames::{PongReply, PresencePush, ServerFrame, Status},
    ids::UserId,
    jobs::{Job, PresenceJob},
    model::Transition,
    ports::{FriendStore, JobQueue, PresenceStore, Pusher},
};
use tracing::{info, warn};

impl<S, P, Q> App<S, P, Q>
where
    S: PresenceStore,
    Q: JobQueue,
{
    /// Queues a presence event after a user came online or went offline. A lost event costs friends one status
    /// push (the `friends` list stays right), so a failure here does not fail the connection.
    pub(crate) async fn announce_later(&self, user: &UserId, transition: Transition, now: i64) {
        if transition == Transition::Unchanged {
            return;
        }
        if let Err(e) = self
            .queue
            .enqueue(&Job::Presence(PresenceJob {
                user: user.clone(),
                at: now,
            }))
            .await
        {
            warn!(%user, error = %e, ?transition, "could not queue a presence event");
        }
    }

    /// `heartbeat`: keeps the connection open (API Gateway closes one idle for 10 minutes and ignores WebSocket
    /// pings) and refreshes last seen once it is [`LAST_SEEN_REFRESH_MS`] old.
    pub async fn heartbeat(&self, user: &UserId, now: i64) -> Result<PongReply, Failure> {
        // Eventual: a stale read only costs the write it would have saved.
        let seen = self
            .store
            .presence(std::slice::from_ref(user))
            .await?
            .remove(user)
            .and_then(|p| p.last_seen);
        if seen.is_none_or(|t| now - t >= LAST_SEEN_REFRESH_MS) {
            self.store.touch(user, now).await?;
        }
        Ok(PongReply { timestamp: now })
    }
}

/// How old the stored last seen may get before a heartbeat writes it again. Last seen is shown only once a user is
/// offline, and `$disconnect` writes it at that moment; a heartbeat's refresh matters only for a connection that
/// vanished without one (which counts as online until its expiry anyway), and that user's last seen is then at most
/// this stale. Heartbeats are the most frequent frame (one per connection every few minutes, docs/capacity.md): a
/// read costs a tenth of a write, so each reads and only one in several writes (one in three at a heartbeat every
/// 9 minutes, one in seven at the reference client's 4).
const LAST_SEEN_REFRESH_MS: i64 = 30 * 60 * 1000;

impl<S, P, Q> App<S, P, Q>
where
    S: PresenceStore + FriendStore,
    P: Pusher,
    Q: JobQueue,
{
    /// The presence-notify consumer: pushes the user's status to its online friends if it changed since the last
    /// push. Safe to repeat: a redelivered event finds the status already announced.
    pub async fn notify_presence(&self, job: &PresenceJob, now: i64) -> Result<(), BackendError> {
        // Strong: the status that holds now decides what friends are told.
        let presence = self
            .store
            .presence_latest(std::slice::from_ref(&job.user))
            .await?
            .remove(&job.user)
            .unwrap_or_default();
        let status = presence.status(now);
        // Friends assume offline until told otherwise.
        // A flap inside the delay pushes nothing, unless a `friends` reply showed the passing status: then the
        // friends who saw it must hear the status that holds now.
        if status == presence.announced.unwrap_or(Status::Offline) && !presence.exposed {
            info!(user = %job.user, ?status, "presence unchanged since the last announcement");
            return Ok(());
        }
        // Friends only, and neither side muted by a block.
        let friends: Vec<UserId> = self
            .store
            .friends_of(&job.user)
            .await?
            .into_iter()
            .filter(|r| r.shares_presence())
            .map(|r| r.user)
            .collect();
        if friends.is_empty() {
            info!(user = %job.user, ?status, "presence changed; no friends to tell");
        } else {
            let theirs = self.store.presence(&friends).await?;
            let refs: Vec<&UserId> = friends.iter().collect();
            let targets = connections_of(&theirs, &refs, None, now);
            let last_seen = match status {
                Status::Online => Some(now),
                Status::Offline => presence.last_seen,
            };
            let frame = ServerFrame::Presence(PresencePush {
                user: job.user.clone(),
                status,
                last_seen,
            })
            .to_json();
            let report = self.deliver(&targets, &frame, now).await;
            info!(user = %job.user, ?status, pushed = report.delivered, "presence announced");
        }
        self.store.set_announced(&job.user, status).await
    }
}

#[cfg(test)]
mod tests {
    use super::LAST_SEEN_REFRESH_MS;
    use crate::{
        ports::PresenceStore,
        testing::{TestApp, conn, user},
    };

    #[tokio::test]
    async fn a_heartbeat_writes_last_seen_only_once_the_stored_one_is_half_an_hour_old() {
        let app = TestApp::with_users(&["alice"]);
        let alice = user("alice");
        let t0 = 1_000_000_000;
        app.connect(&alice, &conn("a1"), t0).await.unwrap();
        let last_seen = || async { app.store.presence(std::slice::from_ref(&alice)).await.unwrap()[&alice].last_seen };
        assert_eq!(app.heartbeat(&alice, t0).await.unwrap().timestamp, t0);
        assert_eq!(last_seen().await, Some(t0), "a user never seen gets last seen at once");
        app.heartbeat(&alice, t0 + LAST_SEEN_REFRESH_MS - 1).await.unwrap();
        assert_eq!(last_seen().await, Some(t0), "fresh enough: not written again");
        app.heartbeat(&alice, t0 + LAST_SEEN_REFRESH_MS).await.unwrap();
        assert_eq!(
            last_seen().await,
            Some(t0 + LAST_SEEN_REFRESH_MS),
            "refreshed once half an hour old"
        );
    }
}
