//! One item struct per table, mapped with serde_dynamo, and their conversions to the domain records.
//! Optional attributes are left out when empty: an index key attribute must be absent, never NULL.

use crate::{
    error::BackendError,
    frames::{LastMessage, Status, Target},
    ids::{Body, ClientMsgId, ConnectionId, GroupId, GroupName, MessageId, UserId},
    model::{Claim, Group, Member, Presence, Session, StoredMessage},
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

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
    pub const UNREAD: &str = "unread";
    pub const LAST_MESSAGE_ID: &str = "last_message_id";
    pub const LAST_FROM: &str = "last_from";
    pub const LAST_PREVIEW: &str = "last_preview";
    pub const LAST_TS: &str = "last_ts";
    pub const LAST_RECV_TS: &str = "last_recv_ts";
    pub const LAST_READ_TS: &str = "last_read_ts";
    pub const EXPIRES_AT: &str = "expires_at";
    /// Frames counted in one rate-limit window (a `{connection}#w{window}` item of Connections).
    pub const FRAMES: &str = "frames";
    /// The sparse index of Messages over `inbox`: a user's unacknowledged one-on-one messages.
    pub const INBOX_INDEX: &str = "Inbox";
    pub const GROUP_ID: &str = "group_id";
    pub const FRIEND_ID: &str = "friend_id";
    pub const CREATED_AT: &str = "created_at";
    pub const ANNOUNCED: &str = "announced";
    pub const EXPOSED: &str = "exposed";
    pub const OWNER: &str = "owner";
    pub const LAST_SEQ: &str = "last_seq";
    pub const MEMBER_COUNT: &str = "member_count";
    pub const LAST_ACK_SEQ: &str = "last_ack_seq";
    pub const LAST_READ_SEQ: &str = "last_read_seq";
    pub const SEQ: &str = "seq";
    /// The global index of GroupMembers over `user_id`: the groups of a user.
    pub const BY_USER_INDEX: &str = "ByUser";
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ConnectionItem {
    pub connection_id: String,
    pub user_id: String,
    pub connected_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct PresenceItem {
    pub user_id: String,
    /// Connection id -> expiry (epoch seconds).
    #[serde(default)]
    pub conns: HashMap<String, i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announced: Option<Status>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exposed: bool,
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
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ClaimItem {
    pub claim: String,
    pub message_id: String,
    pub lease_until: i64,
    pub done: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    pub expires_at: i64,
}

impl TryFrom<ClaimItem> for Claim {
    type Error = BackendError;
    fn try_from(c: ClaimItem) -> Result<Self, BackendError> {
        Ok(Claim {
            message_id: MessageId::parse(&c.message_id).map_err(|e| BackendError::corrupt("claim", e))?,
            lease_until: c.lease_until,
            done: c.done,
            seq: c.seq,
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct MessageItem {
    pub message_id: String,
    pub timestamp: i64,
    pub sender: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    /// The recipient's id until it acknowledges the message: the key of the sparse Inbox index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbox: Option<String>,
    pub body: String,
    pub client_msg_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

impl MessageItem {
    pub fn new(m: &StoredMessage, expires_at: Option<i64>) -> Self {
        let (recipient, group_id) = match &m.target {
            Target::To(u) => (Some(u.to_string()), None),
            Target::Group(g) => (None, Some(g.to_string())),
        };
        Self {
            message_id: m.id.to_string(),
            timestamp: m.timestamp(),
            sender: m.from.to_string(),
            inbox: recipient.clone(),
            recipient,
            group_id,
            body: m.body.as_str().to_owned(),
            client_msg_id: m.client_msg_id.to_string(),
            seq: m.seq,
            delivered_at: m.delivered_at,
            expires_at,
        }
    }
}

impl TryFrom<MessageItem> for StoredMessage {
    type Error = BackendError;
    fn try_from(i: MessageItem) -> Result<Self, BackendError> {
        let bad = |e: crate::ids::FieldError| BackendError::corrupt("message", e);
        let target = match (i.recipient, i.group_id) {
            (Some(u), None) => Target::To(UserId::parse(&u).map_err(bad)?),
            (None, Some(g)) => Target::Group(GroupId::parse(&g).map_err(bad)?),
            _ => {
                return Err(BackendError::corrupt(
                    "message",
                    "a message needs exactly one recipient or group",
                ));
            }
        };
        let id = MessageId::parse(&i.message_id).map_err(bad)?;
        if id.timestamp() != i.timestamp {
            return Err(BackendError::corrupt(
                "message",
                "the timestamp is not the time of the message id",
            ));
        }
        Ok(StoredMessage {
            id,
            from: UserId::parse(&i.sender).map_err(bad)?,
            target,
            body: Body::try_from(i.body).map_err(bad)?,
            client_msg_id: ClientMsgId::parse(&i.client_msg_id).map_err(bad)?,
            seq: i.seq,
            delivered_at: i.delivered_at,
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct GroupItem {
    pub group_id: String,
    pub name: String,
    pub owner: String,
    pub created_at: i64,
    #[serde(default)]
    pub last_seq: u64,
    #[serde(default)]
    pub member_count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_preview: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ts: Option<i64>,
}

impl GroupItem {
    pub fn new(g: &Group) -> Self {
        Self {
            group_id: g.id.to_string(),
            name: g.name.as_str().to_owned(),
            owner: g.owner.to_string(),
            created_at: g.created_at,
            last_seq: g.last_seq,
            member_count: g.member_count,
            last_message_id: g.last.as_ref().map(|l| l.message_id.to_string()),
            last_from: g.last.as_ref().map(|l| l.from.to_string()),
            last_preview: g.last.as_ref().map(|l| l.preview.clone()),
            last_ts: g.last.as_ref().map(|l| l.timestamp),
        }
    }
}

impl TryFrom<GroupItem> for Group {
    type Error = BackendError;
    fn try_from(i: GroupItem) -> Result<Self, BackendError> {
        let bad = |e: crate::ids::FieldError| BackendError::corrupt("group", e);
        let last = match (i.last_message_id, i.last_from, i.last_preview, i.last_ts) {
            (Some(id), Some(from), Some(preview), Some(timestamp)) => Some(LastMessage {
                message_id: MessageId::parse(&id).map_err(bad)?,
                from: UserId::parse(&from).map_err(bad)?,
                preview,
                timestamp,
            }),
            _ => None,
        };
        Ok(Group {
            id: GroupId::parse(&i.group_id).map_err(bad)?,
            name: GroupName::try_from(i.name).map_err(bad)?,
            owner: UserId::parse(&i.owner).map_err(bad)?,
            created_at: i.created_at,
            last_seq: i.last_seq,
            member_count: i.member_count,
            last,
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct MemberItem {
    pub group_id: String,
    pub user_id: String,
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
            group_id: group.to_string(),
            user_id: m.user.to_string(),
            joined_at: m.joined_at,
            joined_seq: m.joined_seq,
            last_ack_seq: m.last_ack_seq,
            last_read_seq: m.last_read_seq,
        }
    }
}

impl TryFrom<MemberItem> for Member {
    type Error = BackendError;
    fn try_from(i: MemberItem) -> Result<Self, BackendError> {
        Ok(Member {
            user: UserId::parse(&i.user_id).map_err(|e| BackendError::corrupt("member", e))?,
            joined_at: i.joined_at,
            joined_seq: i.joined_seq,
            last_ack_seq: i.last_ack_seq,
            last_read_seq: i.last_read_seq,
        })
    }
}

/// A group message's place in its group: `seq` orders the group's history.
#[derive(Debug, Serialize, Deserialize)]
pub struct GroupHistoryItem {
    pub group_id: String,
    pub seq: u64,
    pub message_id: String,
    pub timestamp: i64,
    pub sender: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

/// A row of a user's history index. `sk` = `{peer}#{timestamp:013}#{message_id}`: one conversation's rows are one
/// key range, in time order (the only way they are read, so no secondary index is needed).
#[derive(Debug, Serialize, Deserialize)]
pub struct IndexItem {
    pub owner_id: String,
    pub sk: String,
    pub peer_id: String,
    pub direction: String,
    pub message_id: String,
    pub timestamp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct SessionItem {
    pub user_id: String,
    pub peer_id: String,
    #[serde(default)]
    pub unread: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_preview: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ts: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_recv_ts: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_read_ts: Option<i64>,
}

impl SessionItem {
    pub fn into_session(self) -> Session {
        let last = match (self.last_message_id, self.last_from, self.last_preview, self.last_ts) {
            (Some(id), Some(from), Some(preview), Some(timestamp)) => {
                match (MessageId::parse(&id), UserId::parse(&from)) {
                    (Ok(message_id), Ok(from)) => Some(LastMessage {
                        message_id,
                        from,
                        preview,
                        timestamp,
                    }),
                    _ => None,
                }
            }
            _ => None,
        };
        Session {
            peer: UserId::parse(&self.peer_id).ok(),
            unread: self.unread,
            last,
            last_recv_ts: self.last_recv_ts,
            last_read_ts: self.last_read_ts,
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
    fn one_on_one_messages_enter_the_inbox_and_round_trip() {
        let m = StoredMessage {
            id: MessageId::generate(1_700_000_000_000),
            from: UserId::parse("alice").unwrap(),
            target: Target::To(UserId::parse("bob").unwrap()),
            body: Body::parse("hi").unwrap(),
            client_msg_id: ClientMsgId::parse("c1").unwrap(),
            seq: Some(2),
            delivered_at: None,
        };
        let item = MessageItem::new(&m, Some(9));
        assert_eq!(item.inbox.as_deref(), Some("bob"));
        let av: HashMap<String, aws_sdk_dynamodb::types::AttributeValue> = serde_dynamo::to_item(&item).unwrap();
        assert!(
            !av.contains_key("group_id") && !av.contains_key("delivered_at"),
            "absent, not NULL"
        );
        let back: MessageItem = serde_dynamo::from_item(av).unwrap();
        assert_eq!(StoredMessage::try_from(back).unwrap(), m);
    }

    #[test]
    fn time_keys_sort_as_time() {
        let a = time_key(&MessageId::generate(999));
        let b = time_key(&MessageId::generate(1_000));
        assert!(a < b, "{a} < {b}");
    }
}
