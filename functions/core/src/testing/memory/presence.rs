//! [`Directory`] and [`PresenceStore`] in memory: users, connections and presence maps.

use super::MemoryStore;
use crate::{
    frames::Status,
    ids::{ConnectionId, UserId},
    model::{NewConnection, Opened, Presence, Transition},
    ports::{Directory, PresenceStore, Res},
};
use std::collections::HashMap;

impl Directory for MemoryStore {
    async fn register(&self, user: &UserId, now: i64) -> Res<()> {
        self.faults.check("register")?;
        self.state.lock().unwrap().users.entry(user.clone()).or_insert(now);
        Ok(())
    }

    async fn existing(&self, users: &[UserId]) -> Res<std::collections::HashSet<UserId>> {
        self.faults.check("lookup")?;
        let s = self.state.lock().unwrap();
        Ok(users.iter().filter(|u| s.users.contains_key(*u)).cloned().collect())
    }

    async fn exists(&self, user: &UserId) -> Res<bool> {
        Ok(self.existing(std::slice::from_ref(user)).await?.contains(user))
    }

    async fn lookup(&self, users: &[UserId], known: &[UserId]) -> Res<HashMap<UserId, Presence>> {
        self.faults.check("lookup")?;
        let s = self.state.lock().unwrap();
        Ok(users
            .iter()
            .filter(|u| s.users.contains_key(*u))
            .chain(known)
            .map(|u| (u.clone(), s.presence.get(u).cloned().unwrap_or_default()))
            .collect())
    }
}

impl PresenceStore for MemoryStore {
    async fn open(&self, c: &NewConnection, max_live: usize) -> Res<Opened> {
        self.faults.check("open")?;
        let mut s = self.state.lock().unwrap();
        let p = s.presence.entry(c.user.clone()).or_default();
        let others = p.live(c.connected_at).filter(|id| **id != c.id).count();
        if max_live > 0 && others >= max_live {
            return Ok(Opened::Full);
        }
        p.connections.insert(c.id.clone(), c.expires_at);
        s.connections.insert(c.id.clone(), c.user.clone());
        Ok(Opened::Open(if others > 0 {
            Transition::Unchanged
        } else {
            Transition::CameOnline
        }))
    }

    async fn close(&self, user: &UserId, connection: &ConnectionId, now: i64) -> Res<Transition> {
        self.faults.check("close")?;
        let mut s = self.state.lock().unwrap();
        s.connections.remove(connection);
        let Some(p) = s.presence.get_mut(user) else {
            return Ok(Transition::Unchanged);
        };
        let was_online = p.live(now).next().is_some();
        p.connections.remove(connection);
        p.last_seen = Some(now);
        let online = p.live(now).next().is_some();
        Ok(if was_online && !online {
            Transition::WentOffline
        } else {
            Transition::Unchanged
        })
    }

    async fn close_gone(&self, user: &UserId, connection: &ConnectionId, now: i64, max_expiry: i64) -> Res<Transition> {
        let young = {
            let s = self.state.lock().unwrap();
            s.presence
                .get(user)
                .and_then(|p| p.connections.get(connection))
                .is_none_or(|exp| *exp >= max_expiry)
        };
        if young {
            return Ok(Transition::Unchanged);
        }
        self.close(user, connection, now).await
    }

    async fn presence(&self, users: &[UserId]) -> Res<HashMap<UserId, Presence>> {
        self.faults.check("presence")?;
        let s = self.state.lock().unwrap();
        Ok(users
            .iter()
            .filter_map(|u| Some((u.clone(), s.presence.get(u)?.clone())))
            .collect())
    }

    async fn presence_latest(&self, users: &[UserId]) -> Res<HashMap<UserId, Presence>> {
        self.presence(users).await
    }

    async fn touch(&self, user: &UserId, now: i64) -> Res<()> {
        if let Some(p) = self.state.lock().unwrap().presence.get_mut(user) {
            p.last_seen = Some(now);
        }
        Ok(())
    }

    async fn set_announced(&self, user: &UserId, status: Status) -> Res<()> {
        if let Some(p) = self.state.lock().unwrap().presence.get_mut(user) {
            p.announced = Some(status);
            p.exposed = false;
        }
        Ok(())
    }

    async fn mark_exposed(&self, user: &UserId) -> Res<()> {
        if let Some(p) = self.state.lock().unwrap().presence.get_mut(user) {
            p.exposed = true;
        }
        Ok(())
    }

    async fn mark_devices(&self, user: &UserId, devices: bool) -> Res<()> {
        self.faults.check("mark_devices")?;
        if let Some(p) = self.state.lock().unwrap().presence.get_mut(user)
            && (devices || p.devices.is_none())
        {
            p.devices = Some(devices);
        }
        Ok(())
    }
}
