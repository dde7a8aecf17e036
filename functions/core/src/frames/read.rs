//! `read`: a conversation is read (one-on-one up to a time, a group up to a sequence).

use super::{MAX_SEQ, Problem, fields::Fields};
use crate::ids::{GroupId, UserId};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ReadFrame {
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

pub(super) fn parse(f: &Fields<'_>) -> Result<ReadFrame, Problem> {
    if f.one_of("with", "group")? {
        Ok(ReadFrame::With {
            with: f.parsed("with", UserId::parse)?,
            up_to: f.opt_uint("upTo", 1, MAX_SEQ)?.map(|t| t as i64),
        })
    } else {
        Ok(ReadFrame::Group {
            group: f.parsed("group", GroupId::parse)?,
            up_to_seq: f.uint("upToSeq", 1, MAX_SEQ)?,
        })
    }
}
