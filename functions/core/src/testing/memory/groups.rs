//! [`GroupStore`] in memory: groups, members with their marks, and group history.

use super::MemoryStore;
use crate::{
    frames::{LastMessage, Target},
    ids::{GroupId, MessageId, UserId},
    model::{Added, Group, GroupEntry, Mark, Marked, Member, StoredMessage},
    ports::{GroupStore, GroupsPage, Res},
};

impl GroupStore for MemoryStore {
    async fn create_group(&self, group: &Group, members: &[Member]) -> Res<()> {
        self.faults.check("create_group")?;
        let mut s = self.state.lock().unwrap();
        s.groups.insert(group.id.clone(), group.clone());
        s.members.insert(
            group.id.clone(),
            members.iter().map(|m| (m.user.clone(), m.clone())).collect(),
        );
        Ok(())
    }

    async fn membership(&self, group: &GroupId, user: &UserId) -> Res<(Option<Group>, Option<Member>)> {
        self.faults.check("membership")?;
        let s = self.state.lock().unwrap();
        Ok((
            s.groups.get(group).cloned(),
            s.members.get(group).and_then(|m| m.get(user)).cloned(),
        ))
    }

    async fn members(&self, group: &GroupId) -> Res<Vec<Member>> {
        self.faults.check("members")?;
        Ok(self
            .state
            .lock()
            .unwrap()
            .members
            .get(group)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn recipients(&self, group: &GroupId, seq: u64) -> Res<Vec<UserId>> {
        let members = self.members(group).await?.into_iter();
        Ok(members.filter(|m| m.joined_seq < seq).map(|m| m.user).collect())
    }

    async fn add_member(&self, group: &GroupId, member: &Member, max_members: u64) -> Res<Added> {
        self.faults.check("add_member")?;
        let mut s = self.state.lock().unwrap();
        let Some(g) = s.groups.get(group) else {
            return Ok(Added::NoGroup);
        };
        if g.member_count >= max_members {
            return Ok(Added::Full);
        }
        let rows = s.members.entry(group.clone()).or_default();
        if rows.contains_key(&member.user) {
            return Ok(Added::AlreadyMember);
        }
        rows.insert(member.user.clone(), member.clone());
        if let Some(g) = s.groups.get_mut(group) {
            g.member_count += 1;
        }
        Ok(Added::Added)
    }

    async fn remove_member(&self, group: &GroupId, user: &UserId) -> Res<bool> {
        self.faults.check("remove_member")?;
        let mut s = self.state.lock().unwrap();
        let removed = s.members.get_mut(group).and_then(|m| m.remove(user)).is_some();
        if removed && let Some(g) = s.groups.get_mut(group) {
            g.member_count -= 1;
        }
        Ok(removed)
    }

    async fn transfer(&self, group: &GroupId, from: &UserId, to: &UserId) -> Res<bool> {
        let mut s = self.state.lock().unwrap();
        match s.groups.get_mut(group) {
            Some(g) if g.owner == *from => {
                g.owner = to.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete_group(&self, group: &GroupId) -> Res<()> {
        self.state.lock().unwrap().groups.remove(group);
        Ok(())
    }

    async fn groups_of(&self, user: &UserId) -> Res<Vec<(Group, Member)>> {
        let s = self.state.lock().unwrap();
        Ok(s.members
            .iter()
            .filter_map(|(g, rows)| Some((s.groups.get(g)?.clone(), rows.get(user)?.clone())))
            .collect())
    }

    async fn group_count(&self, user: &UserId, cap: u64) -> Res<u64> {
        self.faults.check("group_count")?;
        let s = self.state.lock().unwrap();
        let n = s.members.values().filter(|rows| rows.contains_key(user)).count() as u64;
        Ok(n.min(cap))
    }

    async fn groups_page(&self, user: &UserId, after: Option<&GroupId>, limit: usize) -> Res<GroupsPage> {
        self.faults.check("groups_page")?;
        let s = self.state.lock().unwrap();
        let mut ids: Vec<&GroupId> = s
            .members
            .iter()
            .filter(|(g, rows)| rows.contains_key(user) && after.is_none_or(|a| *g > a))
            .map(|(g, _)| g)
            .collect();
        ids.sort();
        let more = ids.len() > limit;
        ids.truncate(limit);
        let next = if more { ids.last().map(|g| (*g).clone()) } else { None };
        let page = ids
            .into_iter()
            .filter_map(|g| Some((s.groups.get(g)?.clone(), s.members[g].get(user)?.clone())))
            .collect();
        Ok((page, next))
    }

    async fn next_seq(&self, group: &GroupId, last: &LastMessage) -> Res<Option<u64>> {
        self.faults.check("next_seq")?;
        let mut s = self.state.lock().unwrap();
        Ok(s.groups.get_mut(group).map(|g| {
            g.last_seq += 1;
            g.last = Some(last.clone());
            g.last_seq
        }))
    }

    async fn record_group_message(&self, message: &StoredMessage) -> Res<()> {
        self.faults.check("record_group_message")?;
        if let Target::Group(g) = &message.target {
            self.state.lock().unwrap().group_history.insert(
                (g.clone(), message.seq.unwrap_or_default()),
                GroupEntry {
                    seq: message.seq.unwrap_or_default(),
                    message_id: message.id,
                    sender: message.from.clone(),
                },
            );
        }
        Ok(())
    }

    async fn recorded_at(&self, group: &GroupId, seq: u64) -> Res<Option<MessageId>> {
        self.faults.check("recorded_at")?;
        let s = self.state.lock().unwrap();
        Ok(s.group_history.get(&(group.clone(), seq)).map(|e| e.message_id))
    }

    async fn mark(&self, group: &GroupId, user: &UserId, mark: Mark, seq: u64) -> Res<Marked> {
        self.faults.check("mark")?;
        let mut s = self.state.lock().unwrap();
        let Some(m) = s.members.get_mut(group).and_then(|rows| rows.get_mut(user)) else {
            return Ok(Marked::NotMember);
        };
        let field = match mark {
            Mark::Ack => &mut m.last_ack_seq,
            Mark::Read => &mut m.last_read_seq,
        };
        if *field >= seq {
            return Ok(Marked::Unchanged);
        }
        *field = seq;
        Ok(Marked::Moved)
    }
}
