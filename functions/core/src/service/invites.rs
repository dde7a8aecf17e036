//! Consent for groups: who joins at once and who is invited, the invitations themselves (`join`, `decline`,
//! `invites`, the `invite` push) and the limits that keep one user from filling another's groups.
//!
//! A user joins a group only by its own act: accepting a friend request earlier (a friend the creator or owner
//! names joins at once, as in most messengers) or joining from an invitation. Anyone else named is invited. A
//! user who blocked the adder is listed as invited to the adder (nothing reveals the block) and told nothing.

use super::{App, delivery::connections_of};
use crate::{
    error::{Failure, forbidden, not_found},
    frames::{GroupRef, InvitePush, InvitesReply, ServerFrame},
    ids::{GroupId, UserId},
    model::{Added, FriendState, Group, Invite, Member},
    ports::{Directory, FrameCounter, FriendStore, GroupStore, InviteStore, JobQueue, PresenceStore, Pusher},
};
use futures::{StreamExt, TryStreamExt, stream};
use std::collections::HashMap;
use tracing::info;

/// Invitations a user holds at most: the newest; older ones lapse (and `invites` lists these).
pub const INVITES_KEPT: usize = 100;
/// How long an invitation waits for an answer.
const INVITE_TTL_SECS: i64 = 30 * 86_400;
/// Group counts read at once when a create names many friends.
const COUNT_CONCURRENCY: usize = 16;

/// Who a `create` or `add` puts where.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Consent {
    /// The adder's friends with room for one more group: members now.
    pub join: Vec<UserId>,
    /// Everyone else: invited, and told so.
    pub invite: Vec<UserId>,
    /// Users who blocked the adder: shown to the adder as invited, never told.
    pub silent: Vec<UserId>,
}

impl Consent {
    /// Everyone the reply lists as invited.
    pub fn invited(&self) -> Vec<UserId> {
        let mut all: Vec<UserId> = self.invite.iter().chain(&self.silent).cloned().collect();
        all.sort();
        all
    }
}

/// The rule: `standings` holds each named user's standing toward the adder; `full` the friends already in as
/// many groups as a user may be.
pub fn consent(named: &[UserId], standings: &HashMap<UserId, FriendState>, full: &[UserId]) -> Consent {
    let mut c = Consent::default();
    for user in named {
        match standings.get(user) {
            Some(FriendState::Blocked) => c.silent.push(user.clone()),
            Some(FriendState::Friend) if !full.contains(user) => c.join.push(user.clone()),
            _ => c.invite.push(user.clone()),
        }
    }
    c
}

impl<S, P, Q> App<S, P, Q>
where
    S: Directory + GroupStore + FriendStore + InviteStore + PresenceStore + FrameCounter,
    P: Pusher,
    Q: JobQueue,
{
    /// Splits the users `adder` named by consent (see [`consent`]): one strong read of each named user's row
    /// about the adder, and for its friends a count of their groups.
    pub(super) async fn consent_of(&self, adder: &UserId, named: &[UserId]) -> Result<Consent, Failure> {
        let standings = self.store.standings(named, adder).await?;
        let friends: Vec<&UserId> = named
            .iter()
            .filter(|u| standings.get(*u) == Some(&FriendState::Friend))
            .collect();
        let full: Vec<UserId> = stream::iter(friends)
            .map(|u| async move { Ok::<_, Failure>((u, self.at_group_limit(u).await?)) })
            .buffer_unordered(COUNT_CONCURRENCY)
            .try_filter_map(|(u, full)| async move { Ok(full.then(|| u.clone())) })
            .try_collect()
            .await?;
        Ok(consent(named, &standings, &full))
    }

    /// Whether `user` belongs to as many groups as a user may.
    pub(super) async fn at_group_limit(&self, user: &UserId) -> Result<bool, Failure> {
        let max = self.settings.max_groups_per_user;
        Ok(self.store.group_count(user, max).await? >= max)
    }

    /// Counts a create against the caller's hourly allowance; `forbidden` beyond it.
    pub(super) async fn count_create(&self, caller: &UserId, now: i64) -> Result<(), Failure> {
        let limit = self.settings.group_creates_per_hour;
        if limit == 0 {
            return Ok(());
        }
        let hour = now / 3_600_000;
        // The counter outlives its hour by a minute (its TTL), as the frame counters do.
        let created = self
            .store
            .count_group_create(caller, hour, (hour + 1) * 3_600 + 60)
            .await?;
        if created > limit {
            return Err(forbidden(format!("at most {limit} groups created per hour")));
        }
        Ok(())
    }

    /// Writes the invitations to `group` and pushes `invite` to the invited users' connections.
    pub(super) async fn send_invites(
        &self,
        group: &Group,
        by: &UserId,
        users: &[UserId],
        now: i64,
    ) -> Result<(), Failure> {
        if users.is_empty() {
            return Ok(());
        }
        let expires_at = now / 1000 + INVITE_TTL_SECS;
        stream::iter(users)
            .map(|user| {
                let invite = Invite {
                    user: user.clone(),
                    group: group.id.clone(),
                    name: group.name.clone(),
                    by: by.clone(),
                    created_at: now,
                };
                async move { self.store.invite(&invite, expires_at).await }
            })
            .buffer_unordered(self.settings.push_concurrency)
            .try_collect::<Vec<()>>()
            .await?;
        // Read strongly: a user who connected a moment ago must get its invitation pushed (an eventual read could
        // miss that connection, and it would learn of the invitation only at its next `invites`).
        let presence = self.store.presence_latest(users).await?;
        let push = ServerFrame::Invite(InvitePush {
            group: GroupRef {
                id: group.id.clone(),
                name: group.name.clone(),
            },
            by: by.clone(),
        })
        .to_json();
        let targets = connections_of(&presence, &users.iter().collect::<Vec<_>>(), None, now);
        self.deliver(&targets, &push, now).await;
        info!(group = %group.id, invited = users.len(), "invitations sent");
        Ok(())
    }

    /// `join`: accepts the caller's invitation to `group`.
    pub(super) async fn join_group(&self, caller: &UserId, group: &GroupId, now: i64) -> Result<ServerFrame, Failure> {
        // Independent reads: at once.
        let (invitation, membership) = futures::try_join!(
            self.store.invitation(caller, group, INVITES_KEPT),
            self.store.membership(group, caller)
        )?;
        if invitation.is_none() {
            return Err(forbidden("no invitation to this group"));
        }
        let g = match membership {
            (None, _) => {
                self.store.drop_invite(caller, group).await?;
                return Err(not_found(format!("no group `{group}`")));
            }
            (Some(g), Some(_)) => g,
            (Some(g), None) => {
                if self.at_group_limit(caller).await? {
                    return Err(forbidden(format!(
                        "at most {} groups per user",
                        self.settings.max_groups_per_user
                    )));
                }
                // Joining starts at the group's current sequence: nothing from before reaches the new member.
                let member = Member::joining(caller.clone(), now, g.last_seq);
                match self
                    .store
                    .add_member(group, &member, self.settings.max_group_members)
                    .await?
                {
                    Added::Added | Added::AlreadyMember => g,
                    Added::Full => {
                        return Err(forbidden(format!(
                            "a group has at most {} members",
                            self.settings.max_group_members
                        )));
                    }
                    Added::NoGroup => {
                        self.store.drop_invite(caller, group).await?;
                        return Err(not_found(format!("no group `{group}`")));
                    }
                }
            }
        };
        self.store.drop_invite(caller, group).await?;
        self.group_reply(g, Vec::new()).await
    }

    /// `decline`: forgets the caller's invitation to `group` (nothing if there is none); answers `invites`.
    pub(super) async fn decline_group(&self, caller: &UserId, group: &GroupId) -> Result<ServerFrame, Failure> {
        self.store.drop_invite(caller, group).await?;
        self.invites_reply(caller).await
    }

    /// `invites`: the caller's newest invitations, newest first.
    pub(super) async fn invites_reply(&self, caller: &UserId) -> Result<ServerFrame, Failure> {
        let invites = self
            .store
            .invites(caller, INVITES_KEPT)
            .await?
            .into_iter()
            .map(|i| InvitePush {
                group: GroupRef {
                    id: i.group,
                    name: i.name,
                },
                by: i.by,
            })
            .collect();
        Ok(ServerFrame::Invites(InvitesReply { invites }))
    }
}
