//! Queue payloads: what one function asks another to do later. JSON in the SQS message body.

use crate::{
    frames::{MessagePush, ServerFrame},
    ids::{ConnectionId, GroupId, MessageId, UserId},
};
use serde::{Deserialize, Serialize};

/// Index a one-on-one message in both participants' history and update their sessions (unread, preview).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexJob {
    pub message_id: MessageId,
    pub from: UserId,
    pub to: UserId,
    pub preview: String,
    /// A copy queued by a retry of the send in releases before the Messages stream fed the indexing (the retry
    /// could not tell whether its first attempt queued the job): the consumer first checks whether the message is
    /// indexed (one read) instead of writing and being refused (several). Nothing sets it any more.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub again: bool,
}

impl IndexJob {
    /// The history job of a stored one-on-one message to `to`.
    pub fn new(message: &crate::model::StoredMessage, to: &UserId) -> Self {
        Self {
            message_id: message.id,
            from: message.from.clone(),
            to: to.clone(),
            // A resumed send whose message was deleted meanwhile: the indexing re-reads it and shows no preview.
            preview: message.preview().unwrap_or_default(),
            again: false,
        }
    }

    pub fn timestamp(&self) -> i64 {
        self.message_id.timestamp()
    }
}

/// Push a group message to the group's online members. A root job (`members` absent) reads the members and
/// splits them into chunk jobs; a chunk job carries the members it serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FanoutJob {
    /// The `message` frame as pushed (its `group` names the group).
    pub message: Box<MessagePush>,
    /// The connection the message was sent from: it got the ack, not a push.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<ConnectionId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<UserId>>,
    /// A change of the message (`edit`, `delete`, `reaction`): pushed instead of the message, to the same
    /// members (those who were members when it was sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<Box<ServerFrame>>,
}

/// Tell a user's online friends that its status changed, if it still holds when the job arrives (the queue delays
/// it, so a connection that flaps pushes nothing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresenceJob {
    pub user: UserId,
    /// When the change happened.
    pub at: i64,
}

/// After a `sync`, push to that connection what the sync could not see yet: the mailbox is a global secondary
/// index, which lags the table by a moment, and a group's fan-out reads presence that may not show a connection of
/// the last moment. Queued delayed by `delay` seconds. It pushes the user's unacknowledged one-on-one messages
/// stored between `since` and `at` (the sync) that the sync did not return, and the group messages after what the
/// sync covered, up to when it runs. A push of a message the client has is harmless: clients drop repeats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CatchUpJob {
    pub user: UserId,
    pub connection: ConnectionId,
    /// When the sync ran (epoch ms).
    pub at: i64,
    /// The oldest message time the sync may have missed (epoch ms).
    pub since: i64,
    /// The last mailbox message the sync returned, when it read the mailbox to its end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbox_after: Option<MessageId>,
    /// Each group's sequence the sync covered.
    #[serde(default)]
    pub groups: Vec<(GroupId, u64)>,
    pub delay: i32,
}

/// What travels on the fan-out queue: pushes made after the fact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PushJob {
    Fanout(FanoutJob),
    CatchUp(CatchUpJob),
}

/// Notify a user with no live connection of a message from `from` (one job per message; a follow-up job closes
/// the coalescing minute). The queue delays it a few seconds, so a user who reconnects meanwhile is not notified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotifyJob {
    pub notify: UserId,
    pub from: UserId,
    /// A group message: the notification is about the group (coalesced per group), not the sender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<crate::ids::GroupId>,
    /// A follow-up: sends what the minute coalesced, counts no message of its own.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub follow_up: bool,
    /// Seconds SQS hides a follow-up (until the minute ends); 0 for the queue's own delay.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub delay: i32,
}

fn is_zero(v: &i32) -> bool {
    *v == 0
}

/// Every job, with the queue it travels on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Job {
    Index(IndexJob),
    Fanout(FanoutJob),
    CatchUp(CatchUpJob),
    Presence(PresenceJob),
    Notify(NotifyJob),
}

/// The queues jobs travel on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueKind {
    Index,
    Fanout,
    Presence,
    Notify,
}

impl Job {
    pub fn queue(&self) -> QueueKind {
        match self {
            Self::Index(_) => QueueKind::Index,
            Self::Fanout(_) | Self::CatchUp(_) => QueueKind::Fanout,
            Self::Presence(_) => QueueKind::Presence,
            Self::Notify(_) => QueueKind::Notify,
        }
    }

    /// Seconds SQS should hide the job before delivering it, if not the queue's own delay (presence events use
    /// the PresenceQueue's `DelaySeconds`).
    pub fn delay_secs(&self) -> Option<i32> {
        match self {
            Self::CatchUp(j) => Some(j.delay),
            Self::Notify(j) if j.delay > 0 => Some(j.delay),
            _ => None,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}
