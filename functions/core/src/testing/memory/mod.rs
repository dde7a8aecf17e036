//! In-memory fakes of the ports, for unit tests of the rules and of handlers. They keep the same promises as the
//! DynamoDB store (conditional writes, idempotent indexing, unread counting; the contract suite in
//! `testing::contract` holds both to them) and can be told to fail an operation to test retries.
//!
//! One file per port, as `aws::dynamo` has: [`presence`] (Directory and PresenceStore), [`messages`], [`index`],
//! [`groups`], [`invites`], [`friends`], [`pull`]; this file holds the state, the counters, the pusher and the
//! queue.

mod changes;
mod devices;
mod friends;
mod groups;
mod index;
mod invites;
mod messages;
mod objects;
mod presence;
mod pull;

pub use objects::MemoryObjects;

use crate::{
    error::BackendError,
    ids::{ConnectionId, GroupId, MessageId, UserId},
    jobs::Job,
    model::{Claim, ClaimKey, FriendRow, Group, GroupEntry, Invite, Member, Presence, StoredMessage},
    ports::{FrameCounter, JobQueue, Posted, Pusher, Res},
};
use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
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
    /// The last message: its id, sender and preview (`None` once deleted).
    pub last: Option<(MessageId, UserId, Option<String>)>,

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
    /// The index jobs of the one-on-one messages stored and not yet taken, as the Messages stream carries them
    /// to the index function (`MemoryStore::take_stream`).
    pub stream: Vec<crate::jobs::IndexJob>,
    /// (owner, message) rows of the history index.
    pub index: BTreeSet<(UserId, MessageId)>,
    pub sessions: HashMap<(UserId, UserId), Session>,
    pub groups: HashMap<GroupId, Group>,
    pub members: HashMap<GroupId, BTreeMap<UserId, Member>>,
    /// GroupHistory: (group, seq) -> message id.
    pub group_history: BTreeMap<(GroupId, u64), GroupEntry>,
    pub friends: BTreeMap<(UserId, UserId), FriendRow>,
    /// Frames per (connection, window).
    pub frames: HashMap<(UserId, i64), u64>,
    /// Groups created per (user, hour).
    pub creates: HashMap<(UserId, i64), u64>,
    /// Attachment bytes announced per (user, day).
    pub uploads: HashMap<(UserId, i64), u64>,
    /// Invitations per (invited user, group).
    pub invites: BTreeMap<(UserId, GroupId), Invite>,
    /// The edit each message's previews show (DynamoDB keeps it on each preview; all of them follow one message).
    pub preview_edits: HashMap<MessageId, i64>,
    /// Registered devices per (user, token).
    pub devices: BTreeMap<(UserId, crate::notify::DeviceToken), crate::notify::Device>,
    /// Notification coalescing per (user, conversation).
    pub notify: HashMap<(UserId, crate::notify::Topic), crate::ports::NotifyState>,
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

impl FrameCounter for MemoryStore {
    async fn count_frame(&self, user: &UserId, window: i64, _expires_at: i64) -> Res<u64> {
        self.faults.check("count_frame")?;
        let mut s = self.state.lock().unwrap();
        let n = s.frames.entry((user.clone(), window)).or_default();
        *n += 1;
        Ok(*n)
    }

    async fn count_group_create(&self, user: &UserId, hour: i64, _expires_at: i64) -> Res<u64> {
        self.faults.check("count_group_create")?;
        let mut s = self.state.lock().unwrap();
        let n = s.creates.entry((user.clone(), hour)).or_default();
        *n += 1;
        Ok(*n)
    }

    async fn count_upload_bytes(&self, user: &UserId, day: i64, bytes: u64, _expires_at: i64) -> Res<u64> {
        self.faults.check("count_upload_bytes")?;
        let mut s = self.state.lock().unwrap();
        let n = s.uploads.entry((user.clone(), day)).or_default();
        *n += bytes;
        Ok(*n)
    }
}

impl MemoryStore {
    pub fn session(&self, user: &str, peer: &str) -> Session {
        let key = (UserId::parse(user).unwrap(), UserId::parse(peer).unwrap());
        self.state
            .lock()
            .unwrap()
            .sessions
            .get(&key)
            .cloned()
            .unwrap_or_default()
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

impl MemoryQueue {
    /// Takes the queued jobs `pick` accepts, in queue order; the others go too (tests run one kind at a time).
    pub fn take<T>(&self, pick: impl Fn(Job) -> Option<T>) -> Vec<T> {
        self.jobs.lock().unwrap().drain(..).filter_map(pick).collect()
    }
}

impl JobQueue for MemoryQueue {
    async fn enqueue(&self, job: &Job) -> Res<()> {
        self.faults.check("enqueue")?;
        self.jobs.lock().unwrap().push(job.clone());
        Ok(())
    }

    async fn enqueue_all(&self, jobs: &[Job]) -> Res<()> {
        self.faults.check("enqueue")?;
        self.jobs.lock().unwrap().extend(jobs.iter().cloned());
        Ok(())
    }
}
