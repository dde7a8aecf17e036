//! `ack` (delivery) and `read`.

use super::{Problem, fields::Fields};
use crate::ids::{GroupId, MessageId, UserId};
use serde::Serialize;

/// The most message ids one `ack` may carry.
pub const MAX_ACK_IDS: usize = 100;
/// The largest group sequence number accepted in a frame.
pub const MAX_SEQ: u64 = (1 << 53) - 1;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Ack {
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

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Read {
    With {
        with: UserId,
        /// Optional: the timestamp of the newest message from `with` the client has shown. Without it the server
        /// reads up to the newest message it has indexed for the conversation, which can lag a just-received one.
        #[serde(rename = "upTo", skip_serializing_if = "Option::is_none")]
        up_to: Option<i64>,
    },
    Group {
        group: GroupId,
        #[serde(rename = "upToSeq")]
        up_to_seq: u64,
    },
}

pub(super) fn parse_ack(f: &Fields<'_>) -> Result<Ack, Problem> {
    if f.one_of("messageIds", "group")? {
        let mut message_ids = f.list("messageIds", 1, MAX_ACK_IDS, MessageId::parse)?;
        message_ids.sort();
        message_ids.dedup();
        Ok(Ack::Messages { message_ids })
    } else {
        Ok(Ack::Group {
            group: f.parsed("group", GroupId::parse)?,
            up_to_seq: f.uint("upToSeq", 1, MAX_SEQ)?,
        })
    }
}

pub(super) fn parse_read(f: &Fields<'_>) -> Result<Read, Problem> {
    if f.one_of("with", "group")? {
        Ok(Read::With {
            with: f.parsed("with", UserId::parse)?,
            up_to: f.opt_uint("upTo", 1, MAX_SEQ)?.map(|t| t as i64),
        })
    } else {
        Ok(Read::Group {
            group: f.parsed("group", GroupId::parse)?,
            up_to_seq: f.uint("upToSeq", 1, MAX_SEQ)?,
        })
    }
}
