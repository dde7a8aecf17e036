//! The records the rules work on, independent of how they are stored.

use crate::{
    attachments::{Attachment, AttachmentLink},
    frames::{Emoji, MessagePush, Status, Target},
    ids::{Body, ClientMsgId, ConnectionId, DeviceId, MessageId, UserId},
};
use std::collections::BTreeMap;

/// A one-on-one message a retry of its send found stored (`MessageStore::stored_direct`).
#[derive(Debug, Clone, PartialEq)]
pub struct FoundDirect {
    pub message: StoredMessage,
    /// Its mailbox row was missing and this call put it: the first attempt stored the message and failed before
    /// its push (the row is written beside the message, before any push), so the retry must push it.
    pub put_back: bool,
}

/// A stored message. Its timestamp is the time part of its id (see [`MessageId::timestamp`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMessage {
    pub id: MessageId,
    pub from: UserId,
    pub target: Target,
    /// `None` once the sender deleted it for everyone: the body is gone from storage.
    pub body: Option<Body>,
    pub client_msg_id: ClientMsgId,
    /// Group: the server sequence. One-on-one: the sender's own number, if it gave one.
    pub seq: Option<u64>,
    /// One-on-one: the device that numbered it (`seq` counts per sender and device).
    pub device: Option<DeviceId>,
    /// One-on-one: when the recipient acknowledged it.
    pub delivered_at: Option<i64>,
    /// When the retention ends (epoch seconds, the table's TTL); `None` keeps it forever.
    pub expires_at: Option<i64>,
    /// When the sender last edited the body.
    pub edited_at: Option<i64>,
    /// Each reader's one reaction.
    pub reactions: BTreeMap<UserId, Emoji>,
    /// Checked at `send`: uploaded by the sender, with the size it announced.
    pub attachments: Vec<Attachment>,
}

/// A one-on-one message its recipient acknowledged: whose `delivered` receipt to send, and when it was first
/// delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub id: MessageId,
    pub from: UserId,
    pub delivered_at: i64,
}

impl StoredMessage {
    /// A message as `send` stores it: no edit, no reaction yet.
    pub fn new(id: MessageId, from: UserId, target: Target, body: Body, client_msg_id: ClientMsgId) -> Self {
        Self {
            id,
            from,
            target,
            body: Some(body),
            client_msg_id,
            seq: None,
            device: None,
            delivered_at: None,
            expires_at: None,
            edited_at: None,
            reactions: BTreeMap::new(),
            attachments: Vec::new(),
        }
    }

    pub fn deleted(&self) -> bool {
        self.body.is_none()
    }

    /// The conversation preview of this message as it is now (none once deleted): its text, or for a message
    /// of attachments alone what they are ("📷 Photo").
    pub fn preview(&self) -> Option<String> {
        let body = self.body.as_ref()?;
        Some(match self.attachments.first() {
            Some(a) if body.is_empty() => a.content_type.preview().to_owned(),
            _ => body.preview(),
        })
    }

    /// Whether `user` may read it: a one-on-one message's two parties, or a member of its group who joined
    /// before it was sent (`member`: the user's membership of the message's group, if any).
    pub fn readable_by(&self, user: &UserId, member: Option<&Member>) -> bool {
        match &self.target {
            Target::To(to) => to == user || &self.from == user,
            Target::Group(_) => member.is_some_and(|m| self.seq.is_some_and(|seq| seq > m.joined_seq)),
        }
    }

    /// The message as `reader` is shown it: with its reactions counted and the reader's own.
    pub fn to_push_for(&self, reader: &UserId) -> MessagePush {
        let mut push = self.to_push();
        push.my_reaction = self.reactions.get(reader).cloned();
        push
    }

    pub fn timestamp(&self) -> i64 {
        self.id.timestamp()
    }

    /// Past its retention at `now_ms`. DynamoDB deletes expired items lazily (within days), so reads must not
    /// show one that is still there.
    pub fn expired(&self, now_ms: i64) -> bool {
        self.expires_at.is_some_and(|e| e * 1000 <= now_ms)
    }

    pub fn to_push(&self) -> MessagePush {
        MessagePush {
            message_id: self.id,
            from: self.from.clone(),
            target: self.target.clone(),
            body: self.body.clone(),
            timestamp: self.timestamp(),
            client_msg_id: self.client_msg_id.clone(),
            seq: self.seq,
            device: self.device.clone(),
            status: None,
            edited_at: self.edited_at,
            deleted: self.deleted(),
            reactions: (!self.reactions.is_empty()).then(|| {
                let mut counts = BTreeMap::new();
                for e in self.reactions.values() {
                    *counts.entry(e.clone()).or_insert(0) += 1;
                }
                counts
            }),
            my_reaction: None,
            // A deleted message's attachments go with its body. URLs are signed per reader (`App::link`).
            attachments: if self.deleted() {
                Vec::new()
            } else {
                self.attachments
                    .iter()
                    .map(|a| AttachmentLink {
                        id: a.id.clone(),
                        content_type: a.content_type.clone(),
                        size: a.size,
                        url: String::new(),
                        expires_at: 0,
                    })
                    .collect()
            },
        }
    }
}

/// Where a user can be reached: live connections with their expiry, and when the user was last seen.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Presence {
    /// Connection id -> expiry in epoch seconds. Entries past their expiry are connections that vanished without
    /// `$disconnect`; they count for nothing.
    pub connections: BTreeMap<ConnectionId, i64>,
    pub last_seen: Option<i64>,
    /// The status last pushed to friends, so a flap inside the presence delay pushes nothing.
    pub announced: Option<Status>,
    /// A `friends` reply showed a status other than `announced` (the change was not pushed yet): the next
    /// presence event must push the status then current even if it equals `announced`, or that friend keeps
    /// what the reply showed.
    pub exposed: bool,
    /// Whether the user has a device registered for push notifications: `Some(false)` once a notification found
    /// none, `Some(true)` once one was registered, `None` before either (unknown: notify as if it had one). Lets a
    /// send or a fan-out skip queueing notifications for web-only users, the common case.
    pub devices: Option<bool>,
}

impl Presence {
    /// Whether a push notification is worth queueing for this user at `now_ms`: away (no live connection) and not
    /// known to have no device (unknown counts as having one). A user with no presence item at all is away too;
    /// callers treat a missing item the same way (`is_none_or`).
    pub fn notifiable(&self, now_ms: i64) -> bool {
        self.live(now_ms).next().is_none() && self.devices != Some(false)
    }

    /// Connections that may still be open at `now_ms`.
    pub fn live(&self, now_ms: i64) -> impl Iterator<Item = &ConnectionId> {
        let now_s = now_ms / 1000;
        self.connections
            .iter()
            .filter(move |(_, exp)| **exp > now_s)
            .map(|(c, _)| c)
    }

    pub fn status(&self, now_ms: i64) -> Status {
        if self.live(now_ms).next().is_some() {
            Status::Online
        } else {
            Status::Offline
        }
    }
}

/// A connection being opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewConnection {
    pub id: ConnectionId,
    pub user: UserId,
    pub connected_at: i64,
    /// Epoch seconds (DynamoDB TTL).
    pub expires_at: i64,
}

/// What a connection change did to the user's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    CameOnline,
    WentOffline,
    Unchanged,
}

/// How one user stands toward another, as that user sees it (one Friends row per direction).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FriendState {
    /// Both accepted: presence and last seen are shared.
    Friend,
    /// This user asked; the other has not answered.
    Requested,
    /// The other user asked this one.
    Incoming,
    /// This user blocked the other.
    Blocked,
}

/// One user's row about another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FriendRow {
    /// The other user.
    pub user: UserId,
    pub state: FriendState,
    /// The other user blocked this row's owner: the row is shown as it was, and shares nothing (no presence, no
    /// request or message reaches the other user). Never revealed to the owner.
    pub muted: bool,
}

impl FriendRow {
    pub fn new(user: UserId, state: FriendState) -> Self {
        Self {
            user,
            state,
            muted: false,
        }
    }

    /// Whether presence is shared along this row: a friendship the other side has not muted. (The owner's own
    /// block makes its row `Blocked`, so neither side's row shares once either blocks.)
    pub fn shares_presence(&self) -> bool {
        self.state == FriendState::Friend && !self.muted
    }
}

/// A change to one Friends row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowChange {
    Keep,
    Delete,
    Put(FriendRow),
}

/// What opening a connection did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    Open(Transition),
    /// The user holds the most live connections it may: nothing was recorded.
    Full,
}

/// The idempotency record of a send: the first attempt's id, who is working on it, and whether it finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub message_id: MessageId,
    /// Epoch ms until which the attempt that holds the claim may still be working.
    pub lease_until: i64,
    /// Stored, delivered and queued: a retry only gets the ack.
    pub done: bool,
    /// The group sequence the message got (recorded when done, for the retries' acks).
    pub seq: Option<u64>,
    /// The conversation the first attempt named: a retry naming another is refused, never acked with this id.
    /// `None` only on claims written before it was recorded (they expire within a day).
    pub target: Option<Target>,
}

/// The key of a claim: one per sender and clientMsgId.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct ClaimKey(String);

impl ClaimKey {
    pub fn new(sender: &UserId, client_msg_id: &ClientMsgId) -> Self {
        // '#' cannot occur in either id, so the key is unambiguous.
        Self(format!("{sender}#{client_msg_id}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_connections_do_not_make_a_user_online() {
        let mut p = Presence::default();
        assert_eq!(p.status(10_000), Status::Offline);
        p.connections.insert(ConnectionId::parse("old").unwrap(), 5);
        p.connections.insert(ConnectionId::parse("new").unwrap(), 20);
        assert_eq!(p.live(10_000).map(|c| c.as_str()).collect::<Vec<_>>(), vec!["new"]);
        assert_eq!(p.status(10_000), Status::Online);
        assert_eq!(p.status(20_000), Status::Offline, "expiry is exclusive");
    }
}

/// A group: its identity, owner and server sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub id: crate::ids::GroupId,
    pub name: crate::ids::GroupName,
    pub owner: UserId,
    pub created_at: i64,
    /// The sequence of the newest message (0: none yet).
    pub last_seq: u64,
    pub member_count: u64,
    pub last: Option<crate::frames::LastMessage>,
}

/// An invitation to a group, as the invited user holds it until it joins or declines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    /// The invited user.
    pub user: UserId,
    pub group: crate::ids::GroupId,
    /// The group's name when it was sent.
    pub name: crate::ids::GroupName,
    pub by: UserId,
    pub created_at: i64,
}

/// One member of a group, with its marks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user: UserId,
    pub joined_at: i64,
    /// The group's sequence when the member joined: it receives what comes after.
    pub joined_seq: u64,
    /// Every message up to this sequence was received (never moves backwards).
    pub last_ack_seq: u64,
    /// Every message up to this sequence was read (never moves backwards).
    pub last_read_seq: u64,
}

impl Member {
    pub fn joining(user: UserId, now: i64, seq: u64) -> Self {
        Self {
            user,
            joined_at: now,
            joined_seq: seq,
            last_ack_seq: seq,
            last_read_seq: seq,
        }
    }
}

impl Group {
    /// Unread is arithmetic: the group's sequence minus the member's read mark. No write per member per message.
    pub fn unread_for(&self, member: &Member) -> u64 {
        self.last_seq.saturating_sub(member.last_read_seq)
    }
}

/// Which mark of a member moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Ack,
    Read,
}

/// What moving a mark did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marked {
    Moved,
    /// The mark was already there or further: marks never move backwards.
    Unchanged,
    NotMember,
}

/// What adding a member did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    Added,
    AlreadyMember,
    /// The group has its maximum number of members.
    Full,
    NoGroup,
}

/// A one-on-one conversation as its owner sees it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Session {
    pub peer: Option<UserId>,
    pub unread: u64,
    pub last: Option<crate::frames::LastMessage>,
    /// Timestamp of the newest message from the peer.
    pub last_recv_ts: Option<i64>,
    /// The owner read everything from the peer up to this timestamp.
    pub last_read_ts: Option<i64>,
}

/// A group message's place in its group's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    pub seq: u64,
    pub message_id: MessageId,
    pub sender: UserId,
}

/// A page of a one-on-one conversation (newest first) and where the next page starts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConversationPage {
    pub ids: Vec<MessageId>,
    pub more: bool,
}
