//! `friends`: friendship by request and acceptance, remove, block and unblock, list. Presence and last seen are
//! shared only between friends. Each user has its own row about the other ([`FriendRow`]); a block leaves the
//! blocked user's row as it was but mutes it, so nothing reveals the block and nothing of either reaches the other.

use super::{App, delivery::connections_of};
use crate::{
    error::{Failure, bad_request, forbidden, not_found},
    frames::{FriendEntry, FriendPush, FriendPushState, FriendsOp, FriendsReply, ServerFrame, Status},
    ids::UserId,
    model::{FriendRow, FriendState, RowChange},
    ports::{Directory, FriendStore, JobQueue, PresenceStore, Pusher},
};
use tracing::{info, warn};

/// What one op writes, and what it tells the other user.
struct Change {
    mine: RowChange,
    theirs: RowChange,
    push: Option<FriendPushState>,
}

impl Change {
    fn none() -> Self {
        Self {
            mine: RowChange::Keep,
            theirs: RowChange::Keep,
            push: None,
        }
    }
}

/// The rules: `mine` is the caller's row about `other`, `theirs` the other's row about the caller.
fn decide(op: &FriendsOp, other: &UserId, me: &UserId, mine: Option<&FriendRow>, theirs: Option<&FriendRow>) -> Change {
    use FriendState::*;
    let put = |user: &UserId, state| RowChange::Put(FriendRow::new(user.clone(), state));
    let mine_state = mine.map(|r| r.state);
    let theirs_state = theirs.map(|r| r.state);
    // The other blocked the caller (its own row says so; the caller's, if any, is muted).
    let muted = mine.is_some_and(|r| r.muted) || theirs_state == Some(Blocked);
    match op {
        FriendsOp::Add { .. } => match (mine_state, theirs_state) {
            (Some(Friend | Blocked), _) => Change::none(),
            // The other blocked the caller: the caller sees its request pending, the other nothing at all.
            _ if muted => Change {
                mine: RowChange::Put(FriendRow {
                    muted: true,
                    ..FriendRow::new(other.clone(), Requested)
                }),
                ..Change::none()
            },
            // They asked first (or both asked at once): this accepts.
            (_, Some(Requested)) | (Some(Incoming), _) => Change {
                mine: put(other, Friend),
                theirs: put(me, Friend),
                push: Some(FriendPushState::Friend),
            },
            (Some(Requested), _) => Change::none(),
            _ => Change {
                mine: put(other, Requested),
                theirs: put(me, Incoming),
                push: Some(FriendPushState::Incoming),
            },
        },
        FriendsOp::Remove { .. } => match mine_state {
            None | Some(Blocked) => Change::none(),
            // Declining pushes nothing: the requester keeps seeing `requested`.
            Some(Incoming) => Change {
                mine: RowChange::Delete,
                ..Change::none()
            },
            // Ending a friendship or withdrawing a request; a muted row only ever existed on the caller's side.
            Some(Friend | Requested) if muted => Change {
                mine: RowChange::Delete,
                ..Change::none()
            },
            Some(Friend | Requested) => Change {
                mine: RowChange::Delete,
                theirs: if theirs_state == Some(Blocked) {
                    RowChange::Keep
                } else {
                    RowChange::Delete
                },
                push: Some(FriendPushState::Removed),
            },
        },
        FriendsOp::Block { .. } => Change {
            mine: put(other, Blocked),
            // Their row stays as they see it, muted; they are told nothing.
            theirs: match theirs {
                Some(r) if r.state != Blocked && !r.muted => RowChange::Put(FriendRow {
                    muted: true,
                    ..r.clone()
                }),
                _ => RowChange::Keep,
            },
            push: None,
        },
        FriendsOp::Unblock { .. } => match (mine_state, theirs) {
            (Some(Blocked), Some(r)) if r.state != Blocked => match r.state {
                // A request made while blocked arrives now.
                Requested => Change {
                    mine: put(other, Incoming),
                    theirs: put(me, Requested),
                    push: None,
                },
                // A friendship (or the caller's own old request) did not survive the block.
                _ => Change {
                    mine: RowChange::Delete,
                    theirs: RowChange::Delete,
                    push: (r.state == Friend).then_some(FriendPushState::Removed),
                },
            },
            (Some(Blocked), Some(_)) => Change {
                // Both blocked each other: the caller's block goes, the other's stays (the caller's row muted).
                mine: RowChange::Delete,
                ..Change::none()
            },
            (Some(Blocked), None) => Change {
                mine: RowChange::Delete,
                ..Change::none()
            },
            _ => Change::none(),
        },
        FriendsOp::List => Change::none(),
    }
}

impl<S, P, Q> App<S, P, Q>
where
    S: Directory + FriendStore + PresenceStore,
    P: Pusher,
    Q: JobQueue,
{
    pub async fn friends_op(&self, caller: &UserId, op: &FriendsOp, now: i64) -> Result<ServerFrame, Failure> {
        let other = match op {
            FriendsOp::Add { user }
            | FriendsOp::Remove { user }
            | FriendsOp::Block { user }
            | FriendsOp::Unblock { user } => user,
            FriendsOp::List => return self.friends_reply(caller, now).await,
        };
        if other == caller {
            return Err(bad_request("`user` must be someone else"));
        }
        let (exists, (mine, theirs)) =
            futures::try_join!(self.store.exists(other), self.store.relation(caller, other))?;
        if !exists {
            return Err(not_found(format!("no user `{other}`")));
        }
        let change = decide(op, other, caller, mine.as_ref(), theirs.as_ref());
        if mine.is_none() && matches!(change.mine, RowChange::Put(_)) {
            // A new row: the caller's friends, requests and blocks together are bounded (the reply lists them all).
            let rows = self.store.friends_of(caller).await?;
            if rows.len() >= self.settings.max_friends {
                return Err(forbidden(format!(
                    "at most {} friends, requests and blocks",
                    self.settings.max_friends
                )));
            }
        }
        self.store
            .set_relation(caller, other, change.mine, change.theirs, now)
            .await?;
        if let Some(state) = change.push {
            self.tell(other, caller, state, now).await;
        }
        info!(op = op_name(op), "friends changed");
        self.friends_reply(caller, now).await
    }

    /// Pushes `{"type":"friend","user":about,"state":...}` to `to`'s connections; a failure only loses the push
    /// (the next `friends list` shows it).
    async fn tell(&self, to: &UserId, about: &UserId, state: FriendPushState, now: i64) {
        let presence = match self.store.presence_latest(std::slice::from_ref(to)).await {
            Ok(p) => p,
            Err(e) => {
                warn!(error = %e, "could not read presence for a friend push");
                return;
            }
        };
        let targets = connections_of(&presence, &[to], None, now);
        let frame = ServerFrame::Friend(FriendPush {
            user: about.clone(),
            state,
        })
        .to_json();
        self.deliver(&targets, &frame, now).await;
    }

    /// The caller's list: every row, with status and last seen for friends only (a muted friend shows offline,
    /// never seen).
    async fn friends_reply(&self, caller: &UserId, now: i64) -> Result<ServerFrame, Failure> {
        let rows = self.store.friends_of(caller).await?;
        let sharing: Vec<UserId> = rows
            .iter()
            .filter(|r| r.shares_presence())
            .map(|r| r.user.clone())
            .collect();
        let presence = if sharing.is_empty() {
            Default::default()
        } else {
            self.store.presence(&sharing).await?
        };
        let mut exposed = Vec::new();
        let friends = rows
            .into_iter()
            .map(|row| {
                let (status, last_seen) = match row.state {
                    FriendState::Friend if row.muted => (Some(Status::Offline), Some(None)),
                    FriendState::Friend => {
                        let p = presence.get(&row.user).cloned().unwrap_or_default();
                        let status = p.status(now);
                        // The reply is current; friends were told `announced`. The pending presence event must
                        // then push even if the change is undone before it runs (see `notify_presence`).
                        if presence.contains_key(&row.user)
                            && status != p.announced.unwrap_or(Status::Offline)
                            && !p.exposed
                        {
                            exposed.push(row.user.clone());
                        }
                        (Some(status), Some(p.last_seen))
                    }
                    _ => (None, None),
                };
                FriendEntry {
                    user: row.user,
                    state: row.state,
                    status,
                    last_seen,
                }
            })
            .collect();
        for (user, r) in exposed
            .iter()
            .zip(futures::future::join_all(exposed.iter().map(|u| self.store.mark_exposed(u))).await)
        {
            if let Err(e) = r {
                warn!(%user, error = %e, "could not mark a presence as exposed");
            }
        }
        Ok(ServerFrame::Friends(FriendsReply { friends }))
    }
}

fn op_name(op: &FriendsOp) -> &'static str {
    match op {
        FriendsOp::Add { .. } => "add",
        FriendsOp::Remove { .. } => "remove",
        FriendsOp::Block { .. } => "block",
        FriendsOp::Unblock { .. } => "unblock",
        FriendsOp::List => "list",
    }
}
