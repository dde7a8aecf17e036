//! [`InviteStore`] in memory: one invitation per (user, group), newest first, the newest `keep` alive.

use super::MemoryStore;
use crate::{
    ids::{GroupId, UserId},
    model::Invite,
    ports::{InviteStore, Res},
};

impl MemoryStore {
    /// `user`'s invitations, newest first (ties by group id, as the DynamoDB index orders them).
    fn newest_invites(&self, user: &UserId) -> Vec<Invite> {
        let s = self.state.lock().unwrap();
        let mut all: Vec<Invite> = s.invites.values().filter(|i| i.user == *user).cloned().collect();
        all.sort_by(|a, b| (b.created_at, &b.group).cmp(&(a.created_at, &a.group)));
        all
    }
}

impl InviteStore for MemoryStore {
    async fn invite(&self, invite: &Invite, _expires_at: i64) -> Res<()> {
        self.faults.check("invite")?;
        let mut s = self.state.lock().unwrap();
        s.invites
            .insert((invite.user.clone(), invite.group.clone()), invite.clone());
        Ok(())
    }

    async fn invitation(&self, user: &UserId, group: &GroupId, keep: usize) -> Res<Option<Invite>> {
        self.faults.check("invitation")?;
        Ok(self
            .newest_invites(user)
            .into_iter()
            .take(keep)
            .find(|i| i.group == *group))
    }

    async fn invites(&self, user: &UserId, limit: usize) -> Res<Vec<Invite>> {
        self.faults.check("invites")?;
        let mut all = self.newest_invites(user);
        all.truncate(limit);
        Ok(all)
    }

    async fn drop_invite(&self, user: &UserId, group: &GroupId) -> Res<()> {
        self.faults.check("drop_invite")?;
        self.state
            .lock()
            .unwrap()
            .invites
            .remove(&(user.clone(), group.clone()));
        Ok(())
    }
}
