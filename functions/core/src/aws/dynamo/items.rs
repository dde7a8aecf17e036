//! One item struct per table, mapped with serde_dynamo, and their conversions to the domain records.
//! Optional attributes are left out when empty: an index key attribute must be absent, never NULL.

use crate::{
    attachments::Attachment,
    error::BackendError,
    frames::{Emoji, LastMessage, Status, Target},
    ids::{Body, ClientMsgId, ConnectionId, DeviceId, GroupId, GroupName, MessageId, UserId},
    model::{Claim, ClaimKey, Group, GroupEntry, Member, Presence, Session, StoredMessage},
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Attribute names, for key and condition expressions.
pub mod attr {
    pub const USER_ID: &str = "user_id";
    pub const JOINED_AT: &str = "joined_at";
    pub const CONNECTION_ID: &str = "connection_id";
    pub const CONNS: &str = "conns";
    pub const LAST_SEEN: &str = "last_seen";
    pub const CLAIM: &str = "claim";
    pub const LEASE_UNTIL: &str = "lease_until";
    pub const DONE: &str = "done";
    pub const MESSAGE_ID: &str = "message_id";
    pub const TIMESTAMP: &str = "timestamp";
    pub const RECIPIENT: &str = "recipient";
    pub const INBOX: &str = "inbox";
    pub const DELIVERED_AT: &str = "delivered_at";
    pub const OWNER_ID: &str = "owner_id";
    pub const SK: &str = "sk";
    pub const PEER_ID: &str = "peer_id";
    /// The session's unread count as it was written at indexing before issue 19; a read zeroes it.
    pub const UNREAD: &str = "unread";
    /// Marks a received MessageIndex row (see `IndexItem::received`).
    pub const RECEIVED: &str = "in";
    pub const LAST_MESSAGE_ID: &str = "last_message_id";
    pub const LAST_FROM: &str = "last_from";
    pub const LAST_PREVIEW: &str = "last_preview";
    pub const LAST_TS: &str = "last_ts";
    pub const LAST_EDITED_AT: &str = "last_edited_at";
    pub const LAST_DELETED: &str = "last_deleted";
    pub const BODY: &str = "body";
    pub const EDITED_AT: &str = "edited_at";
    pub const REACTIONS: &str = "reactions";
    pub const ATTACHMENTS: &str = "attachments";
    pub const LAST_RECV_TS: &str = "last_recv_ts";
    pub const LAST_READ_TS: &str = "last_read_ts";
    pub const EXPIRES_AT: &str = "expires_at";
    /// Frames counted in one rate-limit window (a `{connection}#w{window}` item of Connections).
    pub const FRAMES: &str = "frames";
    /// The sparse index of Messages over `inbox`: a user's unacknowledged one-on-one messages, as they were kept
    /// before the Mailbox table (read until its last entry is acknowledged or expired; see `mailbox.rs`).
    pub const INBOX_INDEX: &str = "Inbox";
    pub const GROUP_ID: &str = "group_id";
    pub const FRIEND_ID: &str = "friend_id";
    pub const CREATED_AT: &str = "created_at";
    pub const ANNOUNCED: &str = "announced";
    pub const EXPOSED: &str = "exposed";
    pub const DEVICES: &str = "devices";
    pub const OWNER: &str = "owner";
    pub const LAST_SEQ: &str = "last_seq";
    pub const MEMBER_COUNT: &str = "member_count";
    pub const LAST_ACK_SEQ: &str = "last_ack_seq";
    pub const LAST_READ_SEQ: &str = "last_read_seq";
    pub const JOINED_SEQ: &str = "joined_seq";
    pub const SEQ: &str = "seq";
    /// The global index of GroupMembers over `user_id`: the groups of a user.
    pub const BY_USER_INDEX: &str = "ByUser";
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ConnectionItem {
    pub connection_id: ConnectionId,
    pub user_id: UserId,
    pub connected_at: i64,
    pub expires_at: i64,
}

/// A Friends row: `user_id`'s view of `friend_id`. Rows written before requests existed have no state: friends.
#[derive(Debug, Serialize, Deserialize)]
pub struct FriendItem {
    pub user_id: UserId,
    pub friend_id: UserId,
    #[serde(default)]
    pub created_at: i64,
    #[serde(default = "friend_state")]
    pub state: crate::model::FriendState,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub muted: bool,
}

fn friend_state() -> crate::model::FriendState {
    crate::model::FriendState::Friend
}

impl FriendItem {
    pub fn new(owner: &UserId, row: &crate::model::FriendRow, now: i64) -> Self {
        Self {
            user_id: owner.clone(),
            friend_id: row.user.clone(),
            created_at: now,
            state: row.state,
            muted: row.muted,
        }
    }
}

impl From<FriendItem> for crate::model::FriendRow {
    fn from(i: FriendItem) -> Self {
        Self {
            user: i.friend_id,
            state: i.state,
            muted: i.muted,
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct PresenceItem {
    pub user_id: String,
    /// Connection id -> expiry (epoch seconds). Kept as strings: the keys are also attribute-name placeholders.
    #[serde(default)]
    pub conns: HashMap<String, i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announced: Option<Status>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exposed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devices: Option<bool>,
}

impl PresenceItem {
    pub fn into_presence(self) -> Presence {
        Presence {
            // Ids this code did not write cannot be posted to anyway; skip them rather than fail the read.
            connections: self
                .conns
                .into_iter()
                .filter_map(|(c, exp)| Some((ConnectionId::parse(&c).ok()?, exp)))
                .collect(),
            last_seen: self.last_seen,
            announced: self.announced,
            exposed: self.exposed,
            devices: self.devices,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ClaimItem {
    pub claim: ClaimKey,
    pub message_id: MessageId,
    pub lease_until: i64,
    pub done: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// The conversation of the first attempt: one of these two.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<GroupId>,
    pub expires_at: i64,
}

impl ClaimItem {
    pub fn new(key: &ClaimKey, c: &Claim, expires_at: i64) -> Self {
        let (recipient, group_id) = match &c.target {
            Some(Target::To(user)) => (Some(user.clone()), None),
            Some(Target::Group(group)) => (None, Some(group.clone())),
            None => (None, None),
        };
        Self {
            claim: key.clone(),
            message_id: c.message_id,
            lease_until: c.lease_until,
            done: c.done,
            seq: c.seq,
            recipient,
            group_id,
            expires_at,
        }
    }
}

impl From<ClaimItem> for Claim {
    fn from(c: ClaimItem) -> Self {
        let target = match (c.recipient, c.group_id) {
            (Some(user), _) => Some(Target::To(user)),
            (None, Some(group)) => Some(Target::Group(group)),
            (None, None) => None,
        };
        Claim {
            message_id: c.message_id,
            lease_until: c.lease_until,
            done: c.done,
            seq: c.seq,
            target,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct MessageItem {
    pub message_id: MessageId,
    pub timestamp: i64,
    pub sender: UserId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<GroupId>,
    /// The recipient's id until it acknowledged the message: the key of the sparse Inbox index. Only messages
    /// stored before the Mailbox table have it; new ones are never written with it (see `mailbox.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbox: Option<UserId>,
    /// Removed when the sender deletes the message for everyone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Body>,
    pub client_msg_id: ClientMsgId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<i64>,
    /// Reader -> emoji; absent until the first reaction (a map, so one reader's change is one nested SET).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub reactions: BTreeMap<UserId, Emoji>,
    /// Removed with the body when the sender deletes the message for everyone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
}

impl MessageItem {
    pub fn new(m: &StoredMessage) -> Self {
        let (recipient, group_id) = match &m.target {
            Target::To(u) => (Some(u.clone()), None),
            Target::Group(g) => (None, Some(g.clone())),
        };
        Self {
            message_id: m.id,
            timestamp: m.timestamp(),
            sender: m.from.clone(),
            inbox: None,
            recipient,
            group_id,
            body: m.body.clone(),
            client_msg_id: m.client_msg_id.clone(),
            seq: m.seq,
            device: m.device.clone(),
            delivered_at: m.delivered_at,
            expires_at: m.expires_at,
            edited_at: m.edited_at,
            reactions: m.reactions.clone(),
            attachments: m.attachments.clone(),
        }
    }
}

impl TryFrom<MessageItem> for StoredMessage {
    type Error = BackendError;
    fn try_from(i: MessageItem) -> Result<Self, BackendError> {
        let target = match (i.recipient, i.group_id) {
            (Some(u), None) => Target::To(u),
            (None, Some(g)) => Target::Group(g),
            _ => {
                return Err(BackendError::corrupt(
                    "message",
                    "a message needs exactly one recipient or group",
                ));
            }
        };
        if i.message_id.timestamp() != i.timestamp {
            return Err(BackendError::corrupt(
                "message",
                "the timestamp is not the time of the message id",
            ));
        }
        Ok(StoredMessage {
            id: i.message_id,
            from: i.sender,
            target,
            body: i.body,
            client_msg_id: i.client_msg_id,
            seq: i.seq,
            device: i.device,
            delivered_at: i.delivered_at,
            expires_at: i.expires_at,
            edited_at: i.edited_at,
            reactions: i.reactions,
            attachments: i.attachments,
        })
    }
}

/// A Mailbox row: a one-on-one message its recipient has not acknowledged yet, or, once it has, a tombstone
/// (with `delivered_at`) kept while a retry of the send may still come (see `mailbox.rs`).
#[derive(Debug, Serialize, Deserialize)]
pub struct MailboxItem {
    pub recipient: UserId,
    pub message_id: MessageId,
    pub sender: UserId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

/// The newest message of a conversation, as Groups and Sessions items keep it: four optional attributes that
/// are all set or all absent.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct LastItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_message_id: Option<MessageId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_from: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_preview: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ts: Option<i64>,
    /// The last message was edited at this time (its preview shows the edit; an older edit does not overwrite).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_edited_at: Option<i64>,
    /// The last message was deleted for everyone: no preview.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_deleted: Option<bool>,
}

impl LastItem {
    pub fn new(last: Option<&LastMessage>) -> Self {
        Self {
            last_message_id: last.map(|l| l.message_id),
            last_from: last.map(|l| l.from.clone()),
            last_preview: last.and_then(|l| l.preview.clone()),
            last_ts: last.map(|l| l.timestamp),
            last_edited_at: None,
            last_deleted: last.and_then(|l| l.deleted.then_some(true)),
        }
    }

    pub fn into_last(self) -> Option<LastMessage> {
        let deleted = self.last_deleted == Some(true);
        Some(LastMessage {
            message_id: self.last_message_id?,
            from: self.last_from?,
            // Every message has a preview until it is deleted.
            preview: if deleted { None } else { Some(self.last_preview?) },
            timestamp: self.last_ts?,
            deleted,
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct GroupItem {
    pub group_id: GroupId,
    pub name: GroupName,
    pub owner: UserId,
    pub created_at: i64,
    #[serde(default)]
    pub last_seq: u64,
    #[serde(default)]
    pub member_count: u64,
    #[serde(flatten)]
    pub last: LastItem,
}

impl GroupItem {
    pub fn new(g: &Group) -> Self {
        Self {
            group_id: g.id.clone(),
            name: g.name.clone(),
            owner: g.owner.clone(),
            created_at: g.created_at,
            last_seq: g.last_seq,
            member_count: g.member_count,
            last: LastItem::new(g.last.as_ref()),
        }
    }
}

impl From<GroupItem> for Group {
    fn from(i: GroupItem) -> Self {
        Group {
            id: i.group_id,
            name: i.name,
            owner: i.owner,
            created_at: i.created_at,
            last_seq: i.last_seq,
            member_count: i.member_count,
            last: i.last.into_last(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct MemberItem {
    pub group_id: GroupId,
    pub user_id: UserId,
    pub joined_at: i64,
    #[serde(default)]
    pub joined_seq: u64,
    #[serde(default)]
    pub last_ack_seq: u64,
    #[serde(default)]
    pub last_read_seq: u64,
}

impl MemberItem {
    pub fn new(group: &GroupId, m: &Member) -> Self {
        Self {
            group_id: group.clone(),
            user_id: m.user.clone(),
            joined_at: m.joined_at,
            joined_seq: m.joined_seq,
            last_ack_seq: m.last_ack_seq,
            last_read_seq: m.last_read_seq,
        }
    }
}

impl From<MemberItem> for Member {
    fn from(i: MemberItem) -> Self {
        Member {
            user: i.user_id,
            joined_at: i.joined_at,
            joined_seq: i.joined_seq,
            last_ack_seq: i.last_ack_seq,
            last_read_seq: i.last_read_seq,
        }
    }
}

/// A group message's place in its group: `seq` orders the group's history.
#[derive(Debug, Serialize, Deserialize)]
pub struct GroupHistoryItem {
    pub group_id: GroupId,
    pub seq: u64,
    pub message_id: MessageId,
    pub timestamp: i64,
    pub sender: UserId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

impl From<GroupHistoryItem> for GroupEntry {
    fn from(row: GroupHistoryItem) -> Self {
        GroupEntry {
            seq: row.seq,
            message_id: row.message_id,
            sender: row.sender,
        }
    }
}

/// A row of a user's history index. `sk` = `{peer}#{timestamp:013}#{message_id}`: one conversation's rows are one
/// key range, in time order (the only way they are read, so no secondary index is needed). The key is all a row
/// holds besides its expiry and the received mark: the peer, time and id are in `sk`, and who sent it is in the
/// message. (Rows written
/// before issue 19 also carry `peer_id`, `direction`, `message_id` and `timestamp`, which nothing reads: 88 bytes
/// a row, two rows a message.)
#[derive(Debug, Serialize, Deserialize)]
pub struct IndexItem {
    pub owner_id: UserId,
    pub sk: String,
    /// A row of a message its owner received (written since unread is counted at read time): the rows `sessions`
    /// counts after the read mark. Absent on sent rows, and on rows counted by the old `unread` attribute.
    #[serde(rename = "in", default, skip_serializing_if = "std::ops::Not::not")]
    pub received: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SessionItem {
    pub user_id: UserId,
    pub peer_id: UserId,
    /// Unread as written at indexing before issue 19 (zeroed by a read); `sessions` adds the count of received
    /// rows after the read mark.
    #[serde(default)]
    pub unread: u64,
    #[serde(flatten)]
    pub last: LastItem,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_recv_ts: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_read_ts: Option<i64>,
}

impl From<SessionItem> for Session {
    fn from(i: SessionItem) -> Self {
        Session {
            peer: Some(i.peer_id),
            unread: i.unread,
            last: i.last.into_last(),
            last_recv_ts: i.last_recv_ts,
            last_read_ts: i.last_read_ts,
        }
    }
}

/// The time-ordered sort key of a message: zero-padded so that string order is time order, then the id.
pub fn time_key(id: &MessageId) -> String {
    format!("{:013}#{id}", id.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_on_one_messages_stay_out_of_the_old_inbox_index_and_round_trip() {
        let m = StoredMessage {
            seq: Some(2),
            expires_at: Some(9),
            ..StoredMessage::new(
                MessageId::generate(1_700_000_000_000),
                UserId::parse("alice").unwrap(),
                Target::To(UserId::parse("bob").unwrap()),
                Body::parse("hi").unwrap(),
                ClientMsgId::parse("c1").unwrap(),
            )
        };
        let item = MessageItem::new(&m);
        // Their mailbox entry is a Mailbox row now: an `inbox` would also write the old index.
        assert_eq!(item.inbox, None);
        let av: HashMap<String, aws_sdk_dynamodb::types::AttributeValue> = serde_dynamo::to_item(&item).unwrap();
        assert!(
            !av.contains_key("group_id") && !av.contains_key("delivered_at") && !av.contains_key("inbox"),
            "absent, not NULL"
        );
        let back: MessageItem = serde_dynamo::from_item(av).unwrap();
        assert_eq!(StoredMessage::try_from(back).unwrap(), m);
    }

    #[test]
    fn a_sessions_last_message_is_flat_attributes_all_or_none() {
        let last = LastMessage {
            message_id: MessageId::generate(1_700_000_000_000),
            from: UserId::parse("alice").unwrap(),
            preview: Some("hi".into()),
            timestamp: 1_700_000_000_000,
            deleted: false,
        };
        let item = SessionItem {
            user_id: UserId::parse("bob").unwrap(),
            peer_id: UserId::parse("alice").unwrap(),
            unread: 3,
            last: LastItem::new(Some(&last)),
            last_recv_ts: Some(7),
            last_read_ts: None,
        };
        let av: HashMap<String, aws_sdk_dynamodb::types::AttributeValue> = serde_dynamo::to_item(&item).unwrap();
        assert!(av.contains_key(attr::LAST_PREVIEW) && !av.contains_key(attr::LAST_READ_TS));
        let back: Session = serde_dynamo::from_item::<_, SessionItem>(av).unwrap().into();
        assert_eq!((back.unread, back.last, back.last_recv_ts), (3, Some(last), Some(7)));
        let bare = HashMap::from([
            (
                attr::USER_ID.to_owned(),
                aws_sdk_dynamodb::types::AttributeValue::S("bob".into()),
            ),
            (
                attr::PEER_ID.to_owned(),
                aws_sdk_dynamodb::types::AttributeValue::S("alice".into()),
            ),
        ]);
        let session: Session = serde_dynamo::from_item::<_, SessionItem>(bare).unwrap().into();
        assert_eq!((session.unread, session.last), (0, None));
    }

    #[test]
    fn time_keys_sort_as_time() {
        let a = time_key(&MessageId::generate(999));
        let b = time_key(&MessageId::generate(1_000));
        assert!(a < b, "{a} < {b}");
    }
}
