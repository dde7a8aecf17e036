//! [`DeviceStore`] in memory: the same rules as `aws/dynamo/devices.rs`.

use super::MemoryStore;
use crate::{
    ids::UserId,
    notify::{Device, DeviceToken, Topic},
    ports::{DeviceStore, NotifyState, Res},
};

impl DeviceStore for MemoryStore {
    async fn devices(&self, user: &UserId) -> Res<Vec<Device>> {
        self.faults.check("devices")?;
        let s = self.state.lock().unwrap();
        Ok(s.devices
            .iter()
            .filter(|((u, _), _)| u == user)
            .map(|(_, d)| d.clone())
            .collect())
    }

    async fn put_device(&self, user: &UserId, device: &Device) -> Res<()> {
        self.faults.check("put_device")?;
        let mut s = self.state.lock().unwrap();
        s.devices.insert((user.clone(), device.token.clone()), device.clone());
        Ok(())
    }

    async fn remove_device(&self, user: &UserId, token: &DeviceToken) -> Res<Option<Device>> {
        self.faults.check("remove_device")?;
        Ok(self
            .state
            .lock()
            .unwrap()
            .devices
            .remove(&(user.clone(), token.clone())))
    }

    async fn note_message(&self, user: &UserId, topic: &Topic, messages: u64) -> Res<NotifyState> {
        self.faults.check("note_message")?;
        let mut s = self.state.lock().unwrap();
        let n = s.notify.entry((user.clone(), topic.clone())).or_default();
        n.pending += messages;
        Ok(*n)
    }

    async fn take_pending(&self, user: &UserId, topic: &Topic, seen: Option<i64>, now: i64) -> Res<Option<u64>> {
        self.faults.check("take_pending")?;
        let mut s = self.state.lock().unwrap();
        let n = s.notify.entry((user.clone(), topic.clone())).or_default();
        if n.last_at != seen {
            return Ok(None);
        }
        let taken = n.pending;
        *n = NotifyState {
            last_at: Some(now),
            pending: 0,
            scheduled: false,
        };
        Ok(Some(taken))
    }

    async fn schedule_follow_up(&self, user: &UserId, topic: &Topic) -> Res<bool> {
        self.faults.check("schedule_follow_up")?;
        let mut s = self.state.lock().unwrap();
        let n = s.notify.entry((user.clone(), topic.clone())).or_default();
        Ok(!std::mem::replace(&mut n.scheduled, true))
    }
}
