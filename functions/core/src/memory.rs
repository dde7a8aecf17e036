//! In-memory fakes of the ports, for unit tests of the rules. They keep the same promises as the DynamoDB store
//! (conditional writes, idempotent indexing) and can be told to fail an operation to test retries.

use crate::{
    error::BackendError,
    frames::Status,
    frames::{LastMessage, Target},
    ids::{ConnectionId, GroupId, MessageId, UserId},
    jobs::{HistoryJob, Job},
    model::{
        Added, Claim, ClaimKey, ConversationPage, Group, GroupEntry, Mark, Marked, Member, NewConnection, Presence,
        StoredMessage, Transition,
    },
    ports::{
        Directory, FrameCounter, FriendStore, GroupStore, IndexStore, JobQueue, MessageStore, Posted, PresenceStore,
        PullStore, Pusher, Res,
    },
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
    pub groups: HashMap<GroupId, Group>,
    pub members: HashMap<GroupId, BTreeMap<UserId, Member>>,
    /// GroupHistory: (group, seq) -> message id.
    pub group_history: BTreeMap<(GroupId, u64), MessageId>,
    pub friends: BTreeSet<(UserId, UserId)>,
    /// Frames per (connection, window).
    pub frames: HashMap<(ConnectionId, i64), u64>,
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
    async fn count_frame(&self, connection: &ConnectionId, window: i64, _expires_at: i64) -> Res<u64> {
        self.faults.check("count_frame")?;
        let mut s = self.state.lock().unwrap();
        let n = s.frames.entry((connection.clone(), window)).or_default();
        *n += 1;
        Ok(*n)
    }
}

impl Directory for MemoryStore {
    async fn register(&self, user: &UserId, now: i64) -> Res<()> {
        self.faults.check("register")?;
        self.state.lock().unwrap().users.entry(user.clone()).or_insert(now);
        Ok(())
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
}
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

impl PullStore for MemoryStore {
    async fn sessions(&self, user: &UserId, limit: usize) -> Res<Vec<crate::model::Session>> {
        let s = self.state.lock().unwrap();
        let mut out: Vec<crate::model::Session> = s
            .sessions
            .iter()
            .filter(|((u, _), _)| u == user)
            .map(|((_, peer), x)| crate::model::Session {
                peer: Some(peer.clone()),
                unread: x.unread,
                last: x.last.as_ref().map(|(id, from, preview)| LastMessage {
                    message_id: *id,
                    from: from.clone(),
                    preview: preview.clone(),
                    timestamp: id.timestamp(),
                }),
                last_recv_ts: x.last_recv_ts,
                last_read_ts: x.last_read_ts,
            })
            .collect();
        out.sort_by_key(|x| std::cmp::Reverse(x.last.as_ref().map(|l| l.timestamp)));
        out.truncate(limit);
        Ok(out)
    }

    async fn session(&self, user: &UserId, peer: &UserId) -> Res<Option<crate::model::Session>> {
        Ok(self
            .sessions(user, usize::MAX)
            .await?
            .into_iter()
            .find(|x| x.peer.as_ref() == Some(peer)))
    }

    async fn inbox(&self, user: &UserId, after: Option<&MessageId>, limit: usize) -> Res<(Vec<StoredMessage>, bool)> {
        self.faults.check("inbox")?;
        let s = self.state.lock().unwrap();
        let ids: Vec<MessageId> = s
            .inbox
            .get(user)
            .map(|b| {
                b.iter()
                    .filter(|id| after.is_none_or(|a| *id > a))
                    .take(limit + 1)
                    .copied()
                    .collect()
            })
            .unwrap_or_default();
        let more = ids.len() > limit;
        Ok((
            ids.iter()
                .take(limit)
                .filter_map(|id| s.messages.get(id).cloned())
                .collect(),
            more,
        ))
    }

    async fn group_entries(&self, group: &GroupId, after: u64, up_to: u64, limit: usize) -> Res<Vec<GroupEntry>> {
        let s = self.state.lock().unwrap();
        if after >= up_to {
            return Ok(Vec::new());
        }
        Ok(s.group_history
            .range((group.clone(), after + 1)..=(group.clone(), up_to))
            .take(limit)
            .filter_map(|((_, seq), id)| {
                Some(GroupEntry {
                    seq: *seq,
                    message_id: *id,
                    sender: s.messages.get(id)?.from.clone(),
                })
            })
            .collect())
    }

    async fn group_entries_before(
        &self,
        group: &GroupId,
        before: u64,
        floor: u64,
        limit: usize,
    ) -> Res<Vec<GroupEntry>> {
        let s = self.state.lock().unwrap();
        if before <= floor + 1 {
            return Ok(Vec::new());
        }
        Ok(s.group_history
            .range((group.clone(), floor + 1)..(group.clone(), before))
            .rev()
            .take(limit)
            .filter_map(|((_, seq), id)| {
                Some(GroupEntry {
                    seq: *seq,
                    message_id: *id,
                    sender: s.messages.get(id)?.from.clone(),
                })
            })
            .collect())
    }

    async fn conversation(
        &self,
        owner: &UserId,
        peer: &UserId,
        before: Option<&MessageId>,
        limit: usize,
    ) -> Res<ConversationPage> {
        let s = self.state.lock().unwrap();
        let mut ids: Vec<MessageId> = s
            .index
            .iter()
            .filter(|(o, id)| {
                o == owner
                    && before.is_none_or(|b| id < b)
                    && s.messages.get(id).is_some_and(|m| {
                        let other = if m.from == *owner {
                            m.target.clone()
                        } else {
                            Target::To(m.from.clone())
                        };
                        other == Target::To(peer.clone())
                    })
            })
            .map(|(_, id)| *id)
            .collect();
        ids.sort_by(|a, b| b.cmp(a));
        let more = ids.len() > limit;
        ids.truncate(limit);
        Ok(ConversationPage { ids, more })
    }

    async fn messages(&self, ids: &[MessageId]) -> Res<HashMap<MessageId, StoredMessage>> {
        let s = self.state.lock().unwrap();
        Ok(ids
            .iter()
            .filter_map(|id| Some((*id, s.messages.get(id)?.clone())))
            .collect())
    }

    async fn memberships(&self, user: &UserId, groups: &[GroupId]) -> Res<HashMap<GroupId, Member>> {
        let s = self.state.lock().unwrap();
        Ok(groups
            .iter()
            .filter_map(|g| Some((g.clone(), s.members.get(g)?.get(user)?.clone())))
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

    async fn finish(&self, key: &ClaimKey, seq: Option<u64>) -> Res<()> {
        self.faults.check("finish")?;
        if let Some(c) = self.state.lock().unwrap().claims.get_mut(key) {
            c.done = true;
            c.seq = seq;
        }
        Ok(())
    }

    async fn get_message(&self, id: &MessageId) -> Res<Option<StoredMessage>> {
        self.faults.check("get_message")?;
        Ok(self.state.lock().unwrap().messages.get(id).cloned())
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

    async fn read_direct(&self, reader: &UserId, peer: &UserId, up_to: Option<i64>) -> Res<Option<i64>> {
        self.faults.check("read_direct")?;
        let mut s = self.state.lock().unwrap();
        if let Some(t) = up_to {
            let session = s.sessions.entry((reader.clone(), peer.clone())).or_default();
            if session.last_read_ts.is_some_and(|r| r >= t) {
                return Ok(None);
            }
            session.unread = 0;
            session.last_read_ts = Some(t);
            return Ok(Some(t));
        }
        let Some(session) = s.sessions.get_mut(&(reader.clone(), peer.clone())) else {
            return Ok(None);
        };
        let Some(recv) = session.last_recv_ts else {
            return Ok(None);
        };
        let before = session.last_read_ts;
        session.unread = 0;
        session.last_read_ts = Some(recv);
        Ok(before.is_none_or(|b| b < recv).then_some(recv))
    }
}

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

    async fn member_ids(&self, group: &GroupId) -> Res<Vec<UserId>> {
        Ok(self.members(group).await?.into_iter().map(|m| m.user).collect())
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

    async fn next_seq(&self, group: &GroupId, last: &LastMessage) -> Res<Option<u64>> {
        self.faults.check("next_seq")?;
        let mut s = self.state.lock().unwrap();
        Ok(s.groups.get_mut(group).map(|g| {
            g.last_seq += 1;
            g.last = Some(last.clone());
            g.last_seq
        }))
    }

    async fn record_group_message(&self, message: &StoredMessage, _expires_at: Option<i64>) -> Res<()> {
        self.faults.check("record_group_message")?;
        if let Target::Group(g) = &message.target {
            self.state
                .lock()
                .unwrap()
                .group_history
                .insert((g.clone(), message.seq.unwrap_or_default()), message.id);
        }
        Ok(())
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
