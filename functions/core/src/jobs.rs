//! Queue payloads: what one function asks another to do later. JSON in the SQS message body.

use crate::{
    frames::MessagePush,
    ids::{ConnectionId, MessageId, UserId},
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
}

impl IndexJob {
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
    pub message: MessagePush,
    /// The connection the message was sent from: it got the ack, not a push.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<ConnectionId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<UserId>>,
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

/// Every job, with the queue it travels on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Job {
    Index(IndexJob),
    Fanout(FanoutJob),
    Presence(PresenceJob),
}

/// The queues jobs travel on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueKind {
    Index,
    Fanout,
    Presence,
}

impl Job {
    pub fn queue(&self) -> QueueKind {
        match self {
            Self::Index(_) => QueueKind::Index,
            Self::Fanout(_) => QueueKind::Fanout,
            Self::Presence(_) => QueueKind::Presence,
        }
    }

    /// Seconds SQS should hide the job before delivering it, if not the queue's own delay (presence events use
    /// the PresenceQueue's `DelaySeconds`).
    pub fn delay_secs(&self) -> Option<i32> {
        None
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}
