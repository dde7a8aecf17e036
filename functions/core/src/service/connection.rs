//! Connecting and disconnecting: the registry, presence and first-sight registration.

use super::App;
use crate::{
    error::BackendError,
    ids::{ConnectionId, UserId},
    model::{NewConnection, Opened, Transition},
    ports::{Directory, JobQueue, PresenceStore},
};

impl<S, P, Q> App<S, P, Q>
where
    S: Directory + PresenceStore,
    Q: JobQueue,
{
    /// `$connect`: registers the user on first sight, records the connection and adds it to the user's presence,
    /// unless the user holds its most connections already ([`Opened::Full`]: every connection of a user is pushed
    /// every message, so their number bounds what one account costs). Nothing is pushed: API Gateway does not
    /// accept posts to a connection before `$connect` returns.
    pub async fn connect(&self, user: &UserId, connection: &ConnectionId, now: i64) -> Result<Opened, BackendError> {
        let c = NewConnection {
            id: connection.clone(),
            user: user.clone(),
            connected_at: now,
            expires_at: now / 1000 + self.settings.connection_ttl_secs,
        };
        let max = self.settings.max_connections;
        let ((), opened) = futures::try_join!(self.store.register(user, now), self.store.open(&c, max))?;
        if let Opened::Open(transition) = opened {
            self.announce_later(user, transition, now).await;
        }
        Ok(opened)
    }
}

impl<S, P, Q> App<S, P, Q>
where
    S: PresenceStore,
    Q: JobQueue,
{
    /// `$disconnect`, and a connection found gone (410): removes it; the user goes offline with last_seen when no
    /// connection is left.
    pub async fn drop_connection(
        &self,
        user: &UserId,
        connection: &ConnectionId,
        now: i64,
    ) -> Result<Transition, BackendError> {
        let transition = self.store.close(user, connection, now).await?;
        self.announce_later(user, transition, now).await;
        Ok(transition)
    }

    /// A push found the connection gone (410). API Gateway answers 410 as well for a connection whose
    /// `$connect` has not returned yet, and that one is about to open: it is removed only if it connected more
    /// than [`CONNECT_GRACE_SECS`] ago (its expiry tells when). A young one that really vanished is removed by
    /// the next push after the grace period, or counts for nothing once it expires.
    pub async fn drop_gone_connection(
        &self,
        user: &UserId,
        connection: &ConnectionId,
        now: i64,
    ) -> Result<Transition, BackendError> {
        let max_expiry = now / 1000 - CONNECT_GRACE_SECS + self.settings.connection_ttl_secs;
        let transition = self.store.close_gone(user, connection, now, max_expiry).await?;
        self.announce_later(user, transition, now).await;
        Ok(transition)
    }
}

/// Longer than API Gateway lets `$connect` run (29 s integration timeout).
pub const CONNECT_GRACE_SECS: i64 = 30;
