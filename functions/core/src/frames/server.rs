//! What the server sends: direct replies (carrying the frame's `requestId`) and pushes.

use super::{Conversation, Emoji, RequestId, Target};
use crate::{
    attachments::{AttachmentId, AttachmentLink},
    ids::{Body, ClientMsgId, DeviceId, GroupId, GroupName, MessageId, UserId},
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The error codes of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    UnknownAction,
    TooLarge,
    NotFound,
    Forbidden,
    RateLimited,
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::UnknownAction => "unknown_action",
            Self::TooLarge => "too_large",
            Self::NotFound => "not_found",
            Self::Forbidden => "forbidden",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }
}

/// Every frame the server sends, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ServerFrame {
    Ack(AckReply),
    Error(ErrorReply),
    /// The reply of a frame that has no other (ack, read, ...) when it carried a `requestId`.
    Ok,
    Sync(SyncReply),
    History(HistoryReply),
    Pong(PongReply),
    Friends(FriendsReply),
    Group(GroupReply),
    Groups(GroupsReply),
    Message(MessagePush),
    Receipt(ReceiptPush),
    Presence(PresencePush),
    Friend(FriendPush),
    Invite(InvitePush),
    Invites(InvitesReply),
    Typing(TypingPush),
    Edit(EditPush),
    Delete(DeletePush),
    Reaction(ReactionPush),
    Upload(UploadReply),
}

impl ServerFrame {
    pub fn to_json(&self) -> String {
        // Only strings, numbers and lists of them: serialization cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Error(ErrorReply {
            code,
            message: message.into(),
            client_msg_id: None,
        })
    }

    /// This frame as the direct reply to a frame that carried `request_id`.
    pub fn reply_to(self, request_id: Option<RequestId>) -> Reply {
        Reply {
            request_id,
            frame: self,
        }
    }
}

/// A direct reply: the frame and the `requestId` of the client frame it answers, one flat JSON object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    #[serde(rename = "requestId", default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<RequestId>,
    #[serde(flatten)]
    pub frame: ServerFrame,
}

impl Reply {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AckReply {
    pub client_msg_id: ClientMsgId,
    pub message_id: MessageId,
    pub timestamp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// One-on-one, to a friend with no live connection: it gets the message at its next `sync`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<RecipientState>,
}

/// The answer to `attach`: upload the bytes with this request before `expiresAt`, then name `attachmentId` in a
/// `send`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadReply {
    pub attachment_id: AttachmentId,
    pub url: String,
    /// Always `PUT`.
    pub method: String,
    /// Send exactly these headers: they are signed (the content type and the length among them).
    pub headers: BTreeMap<String, String>,
    pub expires_at: i64,
}

/// How the recipient of a one-on-one message stands: always offline (an online recipient is not named).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecipientState {
    pub status: Status,
    /// When it was last seen; null if never.
    pub last_seen: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorReply {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<ClientMsgId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncReply {
    /// First page only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversations: Option<Vec<ConversationSummary>>,
    pub messages: Vec<MessagePush>,
    pub next: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationSummary {
    #[serde(flatten)]
    pub conversation: Conversation,
    pub unread: u64,
    #[serde(default)]
    pub last: Option<LastMessage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastMessage {
    pub message_id: MessageId,
    pub from: UserId,
    /// Absent when the message was deleted for everyone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<String>,
    pub timestamp: i64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryReply {
    pub messages: Vec<MessagePush>,
    pub next: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PongReply {
    pub timestamp: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Online,
    Offline,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FriendEntry {
    pub user: UserId,
    pub state: crate::model::FriendState,
    /// Friends only: their current status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Friends only: when they were last seen (`Some(None)`: never seen offline, shown as null).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<Option<i64>>,
}

/// Pushed to a user when another asks to be friends (`incoming`), accepts (`friend`), or withdraws its request or
/// ends the friendship (`removed`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FriendPush {
    pub user: UserId,
    pub state: FriendPushState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FriendPushState {
    Incoming,
    Friend,
    Removed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FriendsReply {
    pub friends: Vec<FriendEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupInfo {
    pub id: GroupId,
    pub name: GroupName,
    pub owner: UserId,
    pub members: Vec<UserId>,
    /// Who the operation invited (create and add: the named users who are not the caller's friends); empty
    /// otherwise.
    #[serde(default)]
    pub invited: Vec<UserId>,
}

/// A group as an invitation names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupRef {
    pub id: GroupId,
    pub name: GroupName,
}

/// Pushed to a user invited to a group; also each entry of an `invites` reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvitePush {
    pub group: GroupRef,
    pub by: UserId,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvitesReply {
    pub invites: Vec<InvitePush>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupReply {
    pub group: GroupInfo,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupSummary {
    pub id: GroupId,
    pub name: GroupName,
    pub last_seq: u64,
    pub unread: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupsReply {
    pub groups: Vec<GroupSummary>,
    /// The next page's cursor; null on the last page.
    pub next: Option<String>,
}

/// A sender's view of its own message in history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageStatus {
    Sent,
    Delivered,
    Read,
}

/// A message as pushed, and as listed by `sync` and `history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessagePush {
    pub message_id: MessageId,
    pub from: UserId,
    #[serde(flatten)]
    pub target: Target,
    /// Absent when the message was deleted for everyone (then `deleted` is true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Body>,
    pub timestamp: i64,
    pub client_msg_id: ClientMsgId,
    /// The group's server sequence, or the sender's own number in a one-on-one conversation if it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// One-on-one: the sending device that numbered `seq`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceId>,
    /// History only, on the reader's own messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<MessageStatus>,
    /// When the sender last edited the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<i64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// How many readers reacted with each emoji (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reactions: Option<BTreeMap<Emoji, u64>>,
    /// The reader's own reaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub my_reaction: Option<Emoji>,
    /// With short-lived download URLs, signed for each reader (`App::link`) just before the frame leaves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<AttachmentLink>,
}

/// A message's body was edited by its sender.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EditPush {
    pub message_id: MessageId,
    pub body: Body,
    pub edited_at: i64,
}

/// A message was deleted for everyone by its sender.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeletePush {
    pub message_id: MessageId,
}

/// A reader set (or, with `emoji` empty, removed) its reaction to a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReactionPush {
    pub message_id: MessageId,
    pub by: UserId,
    /// `""`: the reaction was removed.
    pub emoji: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReceiptStatus {
    Delivered,
    Read,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptPush {
    pub status: ReceiptStatus,
    pub by: UserId,
    /// Delivered receipts: the messages acknowledged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_ids: Option<Vec<MessageId>>,
    /// Read receipts: the conversation (the reader) and the newest message timestamp now read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up_to: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresencePush {
    pub user: UserId,
    pub status: Status,
    pub last_seen: Option<i64>,
}

/// Someone is (or stopped) typing to the receiver, or in one of its groups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TypingPush {
    pub from: UserId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<GroupId>,
    pub state: super::TypingState,
}
