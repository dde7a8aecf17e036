//! `history`: one conversation, newest first, page by page.

use super::{Problem, fields::Fields};
use crate::ids::{GroupId, UserId};
use serde::{Deserialize, Serialize};

/// A conversation: with a user, or a group.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Conversation {
    With(UserId),
    Group(GroupId),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryFrame {
    #[serde(flatten)]
    pub conversation: Conversation,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

impl HistoryFrame {
    pub const DEFAULT_LIMIT: u32 = 50;
    pub const MAX_LIMIT: u32 = 100;
}

pub(super) fn parse(f: &Fields<'_>) -> Result<HistoryFrame, Problem> {
    let conversation = if f.one_of("with", "group")? {
        Conversation::With(f.parsed("with", UserId::parse)?)
    } else {
        Conversation::Group(f.parsed("group", GroupId::parse)?)
    };
    Ok(HistoryFrame {
        conversation,
        before: f.opt_parsed("before", super::fields::cursor)?,
        limit: f
            .opt_uint("limit", 1, u64::from(HistoryFrame::MAX_LIMIT))?
            .map(|l| l as u32),
    })
}
