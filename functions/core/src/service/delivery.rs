//! Pushing frames to connections, and cleaning up the ones that are gone.

use super::App;
use crate::{
    ids::{ConnectionId, UserId},
    model::Presence,
    ports::{JobQueue, Posted, PresenceStore, Pusher},
};
use futures::{StreamExt, stream};
use std::collections::HashMap;
use tracing::warn;

/// What a delivery did, for logs and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    pub delivered: usize,
    /// Connections that answered 410 and were removed.
    pub gone: usize,
    /// Posts that failed otherwise (the message stays available through `sync`).
    pub failed: usize,
}

/// The live connections of `users`, except `except` (the connection a frame came from).
pub fn connections_of(
    presence: &HashMap<UserId, Presence>,
    users: &[&UserId],
    except: Option<&ConnectionId>,
    now: i64,
) -> Vec<(UserId, ConnectionId)> {
    let mut out = Vec::new();
    for user in users {
        if let Some(p) = presence.get(*user) {
            for c in p.live(now).filter(|c| Some(*c) != except) {
                if !out.iter().any(|(_, seen)| seen == c) {
                    out.push(((*user).clone(), c.clone()));
                }
            }
        }
    }
    out
}

impl<S, P, Q> App<S, P, Q>
where
    S: PresenceStore,
    P: Pusher,
    Q: JobQueue,
{
    /// Posts `frame` to every target concurrently (bounded); a connection that is gone is removed from the
    /// registry and from its user's presence.
    pub async fn deliver(&self, targets: &[(UserId, ConnectionId)], frame: &str, now: i64) -> DeliveryReport {
        let outcomes = stream::iter(targets)
            .map(|(user, connection)| async move {
                match self.pusher.post(connection, frame).await {
                    Ok(Posted::Delivered) => Ok(()),
                    Ok(Posted::Gone) => {
                        if let Err(e) = self.drop_gone_connection(user, connection, now).await {
                            warn!(error = %e, %connection, "could not remove a gone connection");
                        }
                        Err(true)
                    }
                    Err(e) => {
                        warn!(error = %e, %connection, "push failed");
                        Err(false)
                    }
                }
            })
            .buffer_unordered(self.settings.push_concurrency)
            .collect::<Vec<_>>()
            .await;
        let mut report = DeliveryReport::default();
        for o in outcomes {
            match o {
                Ok(()) => report.delivered += 1,
                Err(true) => report.gone += 1,
                Err(false) => report.failed += 1,
            }
        }
        report
    }
}
