//! `send`: one message to a user or a group.

use super::{Problem, fields::Fields};
use crate::{
    attachments::AttachmentId,
    ids::{Body, ClientMsgId, DeviceId, GroupId, UserId},
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SendFrame {
    pub client_msg_id: ClientMsgId,
    #[serde(flatten)]
    pub target: Target,
    pub body: Body,
    /// The sender's own sequence number in a one-on-one conversation: stored and passed through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// The device that numbered it (one-on-one): `seq` counts per sender, device and conversation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceId>,
    /// Uploaded attachments (`attach`), at most 10, each once; with them the body may be empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<AttachmentId>,
}

/// Who a message is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Target {
    To(UserId),
    Group(GroupId),
}

/// The largest client sequence number accepted (JavaScript's safe integer range).
pub const MAX_CLIENT_SEQ: u64 = (1 << 53) - 1;

pub(super) fn parse(f: &Fields<'_>) -> Result<SendFrame, Problem> {
    let client_msg_id = f.parsed("clientMsgId", ClientMsgId::parse)?;
    let target = if f.one_of("to", "group")? {
        Target::To(f.parsed("to", UserId::parse)?)
    } else {
        Target::Group(f.parsed("group", GroupId::parse)?)
    };
    let attachments = if f.has("attachments") {
        let ids = f.list("attachments", 1, super::MAX_ATTACHMENTS, AttachmentId::parse)?;
        if (1..ids.len()).any(|i| ids[..i].contains(&ids[i])) {
            return Err(Problem::bad("`attachments` must not name an attachment twice"));
        }
        ids
    } else {
        Vec::new()
    };
    let body = if attachments.is_empty() {
        f.parsed("body", Body::parse)?
    } else {
        f.opt_parsed("body", Body::parse_or_empty)?.unwrap_or_default()
    };
    // In a group the server assigns the sequence; a client's own number there would only confuse readers.
    let (seq, device) = match target {
        Target::To(_) => (
            f.opt_uint("seq", 0, MAX_CLIENT_SEQ)?,
            f.opt_parsed("device", DeviceId::parse)?,
        ),
        Target::Group(_) => (None, None),
    };
    Ok(SendFrame {
        client_msg_id,
        target,
        body,
        seq,
        device,
        attachments,
    })
}
