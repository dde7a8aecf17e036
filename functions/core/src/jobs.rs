//! Queue payloads: what one function asks another to do later. JSON in the SQS message body.

use crate::ids::{MessageId, UserId};
use serde::{Deserialize, Serialize};

/// Index a one-on-one message in both participants' history and update their sessions (unread, preview).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryJob {
    pub message_id: MessageId,
    pub from: UserId,
    pub to: UserId,
    pub preview: String,
}

impl HistoryJob {
    pub fn timestamp(&self) -> i64 {
        self.message_id.timestamp()
    }
}

/// Every job, with the queue it travels on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Job {
    History(HistoryJob),
}

/// The queues jobs travel on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueKind {
    History,
    Fanout,
    Presence,
}

impl Job {
    pub fn queue(&self) -> QueueKind {
        match self {
            Self::History(_) => QueueKind::History,
        }
    }

    /// Seconds SQS should hide the job before delivering it.
    pub fn delay_secs(&self) -> Option<i32> {
        None
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}
