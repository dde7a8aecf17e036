//! `attach`: ask for a presigned upload of one attachment.

use super::{Problem, fields::Fields};
use crate::attachments::ContentType;
use serde::Serialize;

/// The largest attachment the protocol allows; a deployment may set a lower cap (`Settings::max_attachment_bytes`).
pub const MAX_ATTACHMENT_BYTES: u64 = 100 * 1024 * 1024;

/// At most this many attachments ride on one message.
pub const MAX_ATTACHMENTS: usize = 10;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttachFrame {
    pub content_type: ContentType,
    pub size: u64,
}

pub(super) fn parse(f: &Fields<'_>) -> Result<AttachFrame, Problem> {
    Ok(AttachFrame {
        content_type: f.parsed("contentType", ContentType::parse)?,
        // Above the cap is `too_large` (the rules know the deployment's cap), not a malformed frame.
        size: f.uint("size", 1, u64::MAX)?,
    })
}
