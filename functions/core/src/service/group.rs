//! Groups: the directory (`group` create/add/remove/leave/members/list) and the members' marks (batched group
//! acks and reads). Non-members get `forbidden`, unknown groups `not_found`; add and remove are the owner's.
//! Who joins at once and who is invited is `invites.rs`'s.

use super::App;
use crate::{
    error::{BackendError, Failure, bad_request, forbidden, not_found},
    frames::{GroupInfo, GroupOp, GroupSummary, ServerFrame},
    ids::{GroupId, GroupName, UserId},
    model::{Added, Group, Mark, Marked, Member},
    ports::{Directory, FrameCounter, FriendStore, GroupStore, InviteStore, JobQueue, PresenceStore, Pusher},
};
use tracing::info;

/// Unknown users a `create` error names at most (the rest are counted).
const UNKNOWN_NAMED: usize = 5;
/// Groups one `group list` page holds at most.
pub const GROUP_PAGE: usize = 100;
/// What a `group list` cursor is sealed for, besides its user.
const GROUPS_SCOPE: &str = "groups";

impl<S, P, Q> App<S, P, Q>
where
    S: Directory + GroupStore + FriendStore + InviteStore + PresenceStore + FrameCounter,
    P: Pusher,
    Q: JobQueue,
{
    /// Runs one `group` operation for `caller`; the reply lists the group as it is after the operation.
    pub async fn group_op(&self, caller: &UserId, op: &GroupOp, now: i64) -> Result<ServerFrame, Failure> {
        match op {
            GroupOp::Create { name, members } => self.create_group(caller, name, members, now).await,
            GroupOp::Add { group, user } => self.add_member(caller, group, user, now).await,
            GroupOp::Remove { group, user } => self.remove_member(caller, group, user).await,
            GroupOp::Leave { group } => self.leave_group(caller, group).await,
            GroupOp::Members { group } => {
                let (g, _) = self.member_of(group, caller).await?;
                self.group_reply(g, Vec::new()).await
            }
            GroupOp::List { cursor } => self.group_list(caller, cursor.as_deref()).await,
            GroupOp::Join { group } => self.join_group(caller, group, now).await,
            GroupOp::Decline { group } => self.decline_group(caller, group).await,
            GroupOp::Invites => self.invites_reply(caller).await,
        }
    }

    /// One page of the caller's groups in id order: at most [`GROUP_PAGE`], and within the reply budget whatever
    /// the names hold. The cursor is the last group id read, sealed for the caller.
    async fn group_list(&self, caller: &UserId, cursor: Option<&str>) -> Result<ServerFrame, Failure> {
        let key = &self.settings.cursor_key;
        let after = cursor
            .map(|c| {
                key.open_position(caller.as_str(), GROUPS_SCOPE, "cursor", c, |id| {
                    GroupId::parse(crate::seal::text(id)?).ok()
                })
            })
            .transpose()?;
        let (page, mut next) = self.store.groups_page(caller, after.as_ref(), GROUP_PAGE).await?;
        let mut groups = Vec::new();
        let mut bytes = 0;
        for (g, m) in page {
            let summary = GroupSummary {
                unread: g.unread_for(&m),
                id: g.id,
                name: g.name,
                last_seq: g.last_seq,
            };
            bytes += super::sync::json_size(&summary);
            if bytes > super::REPLY_BUDGET && !groups.is_empty() {
                next = groups.last().map(|s: &GroupSummary| s.id.clone());
                break;
            }
            groups.push(summary);
        }
        let next = next.map(|id| key.seal(caller.as_str(), GROUPS_SCOPE, id.as_str().as_bytes()));
        Ok(ServerFrame::Groups(crate::frames::GroupsReply { groups, next }))
    }

    async fn owned(&self, group: &GroupId, user: &UserId) -> Result<Group, Failure> {
        let (g, _) = self.member_of(group, user).await?;
        if g.owner != *user {
            return Err(forbidden("only the group's owner can do this"));
        }
        Ok(g)
    }

    /// The group as it is now, with `invited` (whom the operation invited).
    pub(super) async fn group_reply(&self, group: Group, invited: Vec<UserId>) -> Result<ServerFrame, Failure> {
        let members = self
            .store
            .members(&group.id)
            .await?
            .into_iter()
            .map(|m| m.user)
            .collect();
        Ok(ServerFrame::Group(crate::frames::GroupReply {
            group: GroupInfo {
                id: group.id,
                name: group.name,
                owner: group.owner,
                members,
                invited,
            },
        }))
    }

    /// Creates a group owned by the caller: its friends among `members` join at once, the others are invited.
    async fn create_group(
        &self,
        caller: &UserId,
        name: &GroupName,
        members: &[UserId],
        now: i64,
    ) -> Result<ServerFrame, Failure> {
        let mut named: Vec<UserId> = members.iter().filter(|m| *m != caller).cloned().collect();
        named.sort();
        named.dedup();
        let max = self.settings.max_group_members;
        if named.len() as u64 + 1 > max {
            return Err(forbidden(format!("a group has at most {max} members")));
        }
        // Existence only (strongly: someone who connected a moment ago exists; the invited users' presence is read
        // when they are told, friends need none)
        // and the creator's own group count, at once.
        let existing = async { Ok::<_, Failure>(self.store.existing(&named).await?) };
        let (known, creator_full) = futures::try_join!(existing, self.at_group_limit(caller))?;
        let unknown: Vec<&str> = named
            .iter()
            .filter(|u| !known.contains(*u))
            .map(UserId::as_str)
            .collect();
        if !unknown.is_empty() {
            // A few names and a count: a reply (and the log line of an error) stays small whatever the frame named.
            let more = unknown.len().saturating_sub(UNKNOWN_NAMED);
            let named = unknown[..unknown.len().min(UNKNOWN_NAMED)].join(", ");
            let tail = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            return Err(not_found(format!("no user {named}{tail}")));
        }
        if creator_full {
            return Err(forbidden(format!(
                "at most {} groups per user",
                self.settings.max_groups_per_user
            )));
        }
        let consent = self.consent_of(caller, &named).await?;
        self.count_create(caller, now).await?;
        let mut joining = consent.join.clone();
        joining.push(caller.clone());
        joining.sort();
        let group = Group {
            id: GroupId::generate(now),
            name: name.clone(),
            owner: caller.clone(),
            created_at: now,
            last_seq: 0,
            member_count: joining.len() as u64,
            last: None,
        };
        let rows: Vec<Member> = joining.iter().map(|u| Member::joining(u.clone(), now, 0)).collect();
        self.store.create_group(&group, &rows).await?;
        info!(group = %group.id, members = rows.len(), invited = consent.invite.len(), "group created");
        self.send_invites(&group, caller, &consent.invite, now).await?;
        Ok(ServerFrame::Group(crate::frames::GroupReply {
            group: GroupInfo {
                id: group.id,
                name: group.name,
                owner: group.owner,
                members: joining,
                invited: consent.invited(),
            },
        }))
    }

    /// The owner adds `user`: at once if they are friends, else by invitation.
    async fn add_member(
        &self,
        caller: &UserId,
        group: &GroupId,
        user: &UserId,
        now: i64,
    ) -> Result<ServerFrame, Failure> {
        let g = self.owned(group, caller).await?;
        // Independent reads: at once.
        let (exists, (_, member)) = futures::try_join!(self.store.exists(user), self.store.membership(group, user))?;
        if !exists {
            return Err(not_found(format!("no user `{user}`")));
        }
        if member.is_some() {
            return self.group_reply(g, Vec::new()).await;
        }
        let consent = self.consent_of(caller, std::slice::from_ref(user)).await?;
        if consent.join.is_empty() {
            self.send_invites(&g, caller, &consent.invite, now).await?;
            return self.group_reply(g, consent.invited()).await;
        }
        // A member added now starts at the group's current sequence: it receives what comes after.
        match self
            .store
            .add_member(
                group,
                &Member::joining(user.clone(), now, g.last_seq),
                self.settings.max_group_members,
            )
            .await?
        {
            Added::Added | Added::AlreadyMember => {}
            Added::Full => {
                return Err(forbidden(format!(
                    "a group has at most {} members",
                    self.settings.max_group_members
                )));
            }
            Added::NoGroup => return Err(not_found(format!("no group `{group}`"))),
        }
        self.group_reply(g, Vec::new()).await
    }

    async fn remove_member(&self, caller: &UserId, group: &GroupId, user: &UserId) -> Result<ServerFrame, Failure> {
        let g = self.owned(group, caller).await?;
        if user == caller {
            return Err(bad_request("the owner leaves with `leave`"));
        }
        if !self.store.remove_member(group, user).await? {
            return Err(not_found(format!("`{user}` is not a member")));
        }
        self.group_reply(g, Vec::new()).await
    }

    /// A member leaves. When the owner leaves, the longest-standing member becomes owner; when the last member
    /// leaves, the group ends.
    async fn leave_group(&self, caller: &UserId, group: &GroupId) -> Result<ServerFrame, Failure> {
        let (mut g, _) = self.member_of(group, caller).await?;
        self.store.remove_member(group, caller).await?;
        let rest = self.store.members(group).await?;
        if rest.is_empty() {
            self.store.delete_group(group).await?;
            info!(%group, "group ended");
            return Ok(ServerFrame::Group(crate::frames::GroupReply {
                group: GroupInfo {
                    id: g.id,
                    name: g.name,
                    owner: g.owner,
                    members: vec![],
                    invited: vec![],
                },
            }));
        }
        if g.owner == *caller {
            let heir = rest
                .iter()
                .min_by(|a, b| (a.joined_at, &a.user).cmp(&(b.joined_at, &b.user)))
                .map(|m| m.user.clone())
                .ok_or_else(|| BackendError::corrupt("group", "members vanished"))?;
            self.store.transfer(group, caller, &heir).await?;
            g.owner = heir;
        }
        Ok(ServerFrame::Group(crate::frames::GroupReply {
            group: GroupInfo {
                id: g.id,
                name: g.name,
                owner: g.owner,
                members: rest.into_iter().map(|m| m.user).collect(),
                invited: vec![],
            },
        }))
    }
}

impl<S, P, Q> App<S, P, Q>
where
    S: GroupStore + FrameCounter,
{
    /// The group and the caller's membership, or why the caller may not see it.
    async fn member_of(&self, group: &GroupId, user: &UserId) -> Result<(Group, Member), Failure> {
        match self.store.membership(group, user).await? {
            (None, _) => Err(not_found(format!("no group `{group}`"))),
            (Some(_), None) => Err(forbidden("not a member of this group")),
            (Some(g), Some(m)) => Ok((g, m)),
        }
    }

    /// A batched group `ack` or `read`: every message up to `up_to` was received (or read). Marks never move
    /// backwards, and never past the group's newest message (that would hide messages yet to come).
    /// The frame, which arrived at `arrived_ms`, pays by progress: it is counted against the rate limit only when
    /// the mark did not move (a repeat, a refusal, a failure).
    pub async fn mark_group(
        &self,
        caller: &UserId,
        group: &GroupId,
        mark: Mark,
        up_to: u64,
        arrived_ms: i64,
    ) -> Result<(), Failure> {
        let marked = self.move_group_mark(caller, group, mark, up_to).await;
        self.pay_unless_moved(caller, arrived_ms, matches!(marked, Ok(Marked::Moved)))
            .await?;
        match marked? {
            Marked::Moved | Marked::Unchanged => Ok(()),
            Marked::NotMember => Err(forbidden("not a member of this group")),
        }
    }

    async fn move_group_mark(
        &self,
        caller: &UserId,
        group: &GroupId,
        mark: Mark,
        up_to: u64,
    ) -> Result<Marked, Failure> {
        let (g, _) = self.member_of(group, caller).await?;
        if up_to > g.last_seq {
            return Err(bad_request(format!(
                "`upToSeq` {up_to} is past the group's newest message ({})",
                g.last_seq
            )));
        }
        Ok(self.store.mark(group, caller, mark, up_to).await?)
    }
}
