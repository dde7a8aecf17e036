//! [`FriendStore`] in memory: one pair per direction.

use super::MemoryStore;
use crate::{
    ids::UserId,
    ports::{FriendStore, Res},
};

impl FriendStore for MemoryStore {
    async fn befriend(&self, a: &UserId, b: &UserId, _now: i64) -> Res<()> {
        let mut s = self.state.lock().unwrap();
        s.friends.insert((a.clone(), b.clone()));
        s.friends.insert((b.clone(), a.clone()));
        Ok(())
    }

    async fn unfriend(&self, a: &UserId, b: &UserId) -> Res<()> {
        let mut s = self.state.lock().unwrap();
        s.friends.remove(&(a.clone(), b.clone()));
        s.friends.remove(&(b.clone(), a.clone()));
        Ok(())
    }

    async fn friends_of(&self, user: &UserId) -> Res<Vec<UserId>> {
        Ok(self
            .state
            .lock()
            .unwrap()
            .friends
            .iter()
            .filter(|(a, _)| a == user)
            .map(|(_, b)| b.clone())
            .collect())
    }
}
