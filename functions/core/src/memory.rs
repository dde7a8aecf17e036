//! In-memory fakes of the ports, for unit tests of the rules. They keep the same promises as the DynamoDB store
//! (conditional writes, idempotent indexing) and can be told to fail an operation to test retries.

use crate::{
    error::BackendError,
    frames::Target,
    ids::{ConnectionId, MessageId, UserId},
    jobs::{HistoryJob, Job},
    model::{Claim, ClaimKey, NewConnection, Presence, StoredMessage, Transition},
    ports::{Directory, IndexStore, JobQueue, MessageStore, Posted, PresenceStore, Pusher, Res},
};
use std::{
    collections::{BTreeSet, HashMap, HashSet},
    sync::Mutex,
};

fn injected(op: &'static str) -> BackendError {
    BackendError::Call {
        service: "memory",
        operation: op,
        retryable: true,
        source: "injected failure".into(),
    }
}

/// Failure injection: the next `n` calls of an operation fail as an outage would.
#[derive(Default)]
pub struct Faults(Mutex<HashMap<&'static str, usize>>);

impl Faults {
    pub fn fail_next(&self, op: &'static str, times: usize) {
        self.0.lock().unwrap().insert(op, times);
    }

    fn check(&self, op: &'static str) -> Res<()> {
        let mut m = self.0.lock().unwrap();
        match m.get_mut(op) {
            Some(n) if *n > 0 => {
                *n -= 1;
                Err(injected(op))
            }
            _ => Ok(()),
        }
    }
}

/// A session as the history consumer leaves it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Session {
    pub unread: u64,
    pub last: Option<(MessageId, UserId, String)>,
    pub last_ts: Option<i64>,
    pub last_recv_ts: Option<i64>,
    pub last_read_ts: Option<i64>,
}

#[derive(Default)]
pub struct State {
    pub users: HashMap<UserId, i64>,
    pub presence: HashMap<UserId, Presence>,
    pub connections: HashMap<ConnectionId, UserId>,
    pub claims: HashMap<ClaimKey, Claim>,
    pub messages: HashMap<MessageId, StoredMessage>,
    /// Unacknowledged one-on-one messages per recipient.
    pub inbox: HashMap<UserId, BTreeSet<MessageId>>,
    /// (owner, message) rows of the history index.
    pub index: BTreeSet<(UserId, MessageId)>,
    pub sessions: HashMap<(UserId, UserId), Session>,
}

#[derive(Default)]
pub struct MemoryStore {
    pub state: Mutex<State>,
    pub faults: Faults,
}

impl MemoryStore {
    pub fn with_users(users: &[&str]) -> Self {
        let s = Self::default();
        for u in users {
            s.state.lock().unwrap().users.insert(UserId::parse(u).unwrap(), 0);
        }
        s
    }
}

impl Directory for MemoryStore {
    async fn register(&self, user: &UserId, now: i64) -> Res<()> {
        self.faults.check("register")?;
        self.state.lock().unwrap().users.entry(user.clone()).or_insert(now);
        Ok(())
    }

    async fn lookup(&self, users: &[UserId]) -> Res<HashMap<UserId, Presence>> {
        self.faults.check("lookup")?;
        let s = self.state.lock().unwrap();
        Ok(users
            .iter()
            .filter(|u| s.users.contains_key(*u))
            .map(|u| (u.clone(), s.presence.get(u).cloned().unwrap_or_default()))
            .collect())
    }
}

impl PresenceStore for MemoryStore {
    async fn open(&self, c: &NewConnection) -> Res<Transition> {
        self.faults.check("open")?;
        let mut s = self.state.lock().unwrap();
        s.connections.insert(c.id.clone(), c.user.clone());
        let p = s.presence.entry(c.user.clone()).or_default();
        let was_online = p.live(c.connected_at).next().is_some();
        p.connections.insert(c.id.clone(), c.expires_at);
        Ok(if was_online {
            Transition::Unchanged
        } else {
            Transition::CameOnline
        })
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

    async fn presence(&self, users: &[UserId]) -> Res<HashMap<UserId, Presence>> {
        self.faults.check("presence")?;
        let s = self.state.lock().unwrap();
        Ok(users
            .iter()
            .filter_map(|u| Some((u.clone(), s.presence.get(u)?.clone())))
            .collect())
    }
}

impl MessageStore for MemoryStore {
    async fn claim(&self, key: &ClaimKey, fresh: &Claim, _expires_at: i64) -> Res<Option<Claim>> {
        self.faults.check("claim")?;
        let mut s = self.state.lock().unwrap();
        if let Some(existing) = s.claims.get(key) {
            return Ok(Some(existing.clone()));
        }
        s.claims.insert(key.clone(), fresh.clone());
        Ok(None)
    }

    async fn read_claim(&self, key: &ClaimKey) -> Res<Option<Claim>> {
        self.faults.check("read_claim")?;
        Ok(self.state.lock().unwrap().claims.get(key).cloned())
    }

    async fn take_over(&self, key: &ClaimKey, seen: &Claim, lease_until: i64) -> Res<bool> {
        self.faults.check("take_over")?;
        let mut s = self.state.lock().unwrap();
        match s.claims.get_mut(key) {
            Some(c) if c.lease_until == seen.lease_until && !c.done => {
                c.lease_until = lease_until;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release(&self, key: &ClaimKey, lease_until: i64) -> Res<()> {
        self.faults.check("release")?;
        let mut s = self.state.lock().unwrap();
        if let Some(c) = s
            .claims
            .get_mut(key)
            .filter(|c| c.lease_until == lease_until && !c.done)
        {
            c.lease_until = 0;
        }
        Ok(())
    }

    async fn finish(&self, key: &ClaimKey) -> Res<()> {
        self.faults.check("finish")?;
        if let Some(c) = self.state.lock().unwrap().claims.get_mut(key) {
            c.done = true;
        }
        Ok(())
    }

    async fn forget(&self, key: &ClaimKey, claim: &Claim) -> Res<()> {
        self.faults.check("forget")?;
        let mut s = self.state.lock().unwrap();
        if s.claims.get(key).is_some_and(|c| c.message_id == claim.message_id) {
            s.claims.remove(key);
        }
        Ok(())
    }

    async fn put_message(&self, m: &StoredMessage, _expires_at: Option<i64>) -> Res<Option<StoredMessage>> {
        self.faults.check("put_message")?;
        let mut s = self.state.lock().unwrap();
        if let Some(existing) = s.messages.get(&m.id) {
            return Ok(Some(existing.clone()));
        }
        s.messages.insert(m.id, m.clone());
        if let Target::To(to) = &m.target {
            s.inbox.entry(to.clone()).or_default().insert(m.id);
        }
        Ok(None)
    }

    async fn mark_delivered(&self, acker: &UserId, ids: &[MessageId], now: i64) -> Res<Vec<StoredMessage>> {
        self.faults.check("mark_delivered")?;
        let mut s = self.state.lock().unwrap();
        let mut out = Vec::new();
        for id in ids {
            let Some(m) = s.messages.get_mut(id) else { continue };
            if m.target != Target::To(acker.clone()) {
                continue;
            }
            m.delivered_at.get_or_insert(now);
            out.push(m.clone());
            if let Some(inbox) = s.inbox.get_mut(acker) {
                inbox.remove(id);
            }
        }
        Ok(out)
    }
}

impl IndexStore for MemoryStore {
    async fn index_direct(&self, job: &HistoryJob, _expires_at: Option<i64>) -> Res<()> {
        self.faults.check("index_direct")?;
        let mut s = self.state.lock().unwrap();
        let ts = job.timestamp();
        s.index.insert((job.from.clone(), job.message_id));
        if s.index.insert((job.to.clone(), job.message_id)) {
            let r = s.sessions.entry((job.to.clone(), job.from.clone())).or_default();
            if r.last_read_ts.is_none_or(|t| t < ts) {
                r.unread += 1;
            }
            if r.last_ts.is_none_or(|t| t < ts) {
                r.last_ts = Some(ts);
                r.last = Some((job.message_id, job.from.clone(), job.preview.clone()));
            }
            if r.last_recv_ts.is_none_or(|t| t < ts) {
                r.last_recv_ts = Some(ts);
            }
        }
        let w = s.sessions.entry((job.from.clone(), job.to.clone())).or_default();
        if w.last_ts.is_none_or(|t| t < ts) {
            w.last_ts = Some(ts);
            w.last = Some((job.message_id, job.from.clone(), job.preview.clone()));
        }
        Ok(())
    }
}

/// Records posts; connections marked gone answer 410.
#[derive(Default)]
pub struct MemoryPusher {
    pub posts: Mutex<Vec<(ConnectionId, String)>>,
    pub gone: Mutex<HashSet<ConnectionId>>,
}

impl MemoryPusher {
    pub fn posts_to(&self, connection: &str) -> Vec<serde_json::Value> {
        self.posts
            .lock()
            .unwrap()
            .iter()
            .filter(|(c, _)| c.as_str() == connection)
            .map(|(_, f)| serde_json::from_str(f).unwrap())
            .collect()
    }
}

impl Pusher for MemoryPusher {
    async fn post(&self, connection: &ConnectionId, frame: &str) -> Res<Posted> {
        if self.gone.lock().unwrap().contains(connection) {
            return Ok(Posted::Gone);
        }
        self.posts.lock().unwrap().push((connection.clone(), frame.to_owned()));
        Ok(Posted::Delivered)
    }
}

#[derive(Default)]
pub struct MemoryQueue {
    pub jobs: Mutex<Vec<Job>>,
    pub faults: Faults,
}

impl JobQueue for MemoryQueue {
    async fn enqueue(&self, job: &Job) -> Res<()> {
        self.faults.check("enqueue")?;
        self.jobs.lock().unwrap().push(job.clone());
        Ok(())
    }
}
