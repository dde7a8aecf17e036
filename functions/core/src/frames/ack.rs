//! `ack`: delivery of one-on-one messages (by id) or of a group up to a sequence.

use super::{Problem, fields::Fields};
use crate::ids::{GroupId, MessageId};
use serde::Serialize;

/// The most message ids one `ack` may carry.
pub const MAX_ACK_IDS: usize = 100;
/// The largest group sequence number accepted in a frame.
pub const MAX_SEQ: u64 = (1 << 53) - 1;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum AckFrame {
    /// One-on-one messages received.
    Messages {
        #[serde(rename = "messageIds")]
        message_ids: Vec<MessageId>,
    },
    /// Every group message up to `up_to_seq` received.
    Group {
        group: GroupId,
        #[serde(rename = "upToSeq")]
        up_to_seq: u64,
    },
}

pub(super) fn parse(f: &Fields<'_>) -> Result<AckFrame, Problem> {
    if f.one_of("messageIds", "group")? {
        let mut message_ids = f.list("messageIds", 1, MAX_ACK_IDS, MessageId::parse)?;
        message_ids.sort();
        message_ids.dedup();
        Ok(AckFrame::Messages { message_ids })
    } else {
        Ok(AckFrame::Group {
            group: f.parsed("group", GroupId::parse)?,
            up_to_seq: f.uint("upToSeq", 1, MAX_SEQ)?,
        })
    }
}
