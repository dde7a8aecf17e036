//! [`FriendStore`] in memory: one row per direction.

use super::MemoryStore;
use crate::{
    ids::UserId,
    model::{FriendRow, RowChange},
    ports::{FriendStore, Res},
};

impl FriendStore for MemoryStore {
    async fn relation(&self, a: &UserId, b: &UserId) -> Res<(Option<FriendRow>, Option<FriendRow>)> {
        self.faults.check("relation")?;
        let s = self.state.lock().unwrap();
        let row = |x: &UserId, y: &UserId| s.friends.get(&(x.clone(), y.clone())).cloned();
        Ok((row(a, b), row(b, a)))
    }

    async fn set_relation(&self, a: &UserId, b: &UserId, a_row: RowChange, b_row: RowChange, _now: i64) -> Res<()> {
        self.faults.check("set_relation")?;
        let mut s = self.state.lock().unwrap();
        for (key, change) in [((a.clone(), b.clone()), a_row), ((b.clone(), a.clone()), b_row)] {
            match change {
                RowChange::Keep => {}
                RowChange::Delete => {
                    s.friends.remove(&key);
                }
                RowChange::Put(row) => {
                    s.friends.insert(key, row);
                }
            }
        }
        Ok(())
    }

    async fn standings(
        &self,
        owners: &[UserId],
        other: &UserId,
    ) -> Res<std::collections::HashMap<UserId, crate::model::FriendState>> {
        self.faults.check("standing")?;
        let s = self.state.lock().unwrap();
        Ok(owners
            .iter()
            .filter_map(|o| Some((o.clone(), s.friends.get(&(o.clone(), other.clone()))?.state)))
            .collect())
    }

    async fn standing(&self, owner: &UserId, other: &UserId) -> Res<Option<crate::model::FriendState>> {
        self.faults.check("standing")?;
        let s = self.state.lock().unwrap();
        Ok(s.friends.get(&(owner.clone(), other.clone())).map(|r| r.state))
    }

    async fn friends_of(&self, user: &UserId) -> Res<Vec<FriendRow>> {
        self.faults.check("friends_of")?;
        let s = self.state.lock().unwrap();
        Ok(s.friends
            .iter()
            .filter(|((owner, _), _)| owner == user)
            .map(|(_, row)| row.clone())
            .collect())
    }
}
