//! `friends`: add, remove, list. Friendship is mutual once either side adds it; the list carries each friend's
//! current status and last seen.

use super::App;
use crate::{
    error::{Failure, bad_request, not_found},
    frames::{FriendEntry, FriendsOp, FriendsReply, ServerFrame, Status},
    ids::UserId,
    ports::{Directory, FriendStore, PresenceStore},
};
use tracing::warn;

impl<S, P, Q> App<S, P, Q>
where
    S: Directory + FriendStore + PresenceStore,
{
    pub async fn friends_op(&self, caller: &UserId, op: &FriendsOp, now: i64) -> Result<ServerFrame, Failure> {
        match op {
            FriendsOp::Add { user } | FriendsOp::Remove { user } => {
                if user == caller {
                    return Err(bad_request("`user` must be someone else"));
                }
                if !self.store.exists(user).await? {
                    return Err(not_found(format!("no user `{user}`")));
                }
                if matches!(op, FriendsOp::Add { .. }) {
                    let current = self.store.friends_of(caller).await?;
                    if !current.contains(user) && current.len() >= self.settings.max_friends {
                        return Err(bad_request(format!("at most {} friends", self.settings.max_friends)));
                    }
                    self.store.befriend(caller, user, now).await?;
                } else {
                    self.store.unfriend(caller, user).await?;
                }
            }
            FriendsOp::List => {}
        }
        let friends = self.store.friends_of(caller).await?;
        let presence = self.store.presence(&friends).await?;
        let mut exposed = Vec::new();
        let friends = friends
            .into_iter()
            .map(|user| {
                let p = presence.get(&user).cloned().unwrap_or_default();
                let status = p.status(now);
                // The reply is current; friends were told `announced`. The pending presence event must then
                // push even if the change is undone before it runs (see `notify_presence`).
                if presence.contains_key(&user) && status != p.announced.unwrap_or(Status::Offline) && !p.exposed {
                    exposed.push(user.clone());
                }
                FriendEntry {
                    status,
                    last_seen: p.last_seen,
                    user,
                }
            })
            .collect();
        for (user, r) in futures::future::join_all(exposed.iter().map(|u| self.store.mark_exposed(u)))
            .await
            .into_iter()
            .zip(&exposed)
            .map(|(r, u)| (u, r))
        {
            if let Err(e) = r {
                warn!(%user, error = %e, "could not mark a presence as exposed");
            }
        }
        Ok(ServerFrame::Friends(FriendsReply { friends }))
    }
}
