//! `sync` and `history`: the pulls.

use super::{Problem, fields::Fields};
use crate::ids::{FieldError, GroupId, UserId};
use serde::{Deserialize, Serialize};

/// Cursors are opaque to clients; this bounds what the server is asked to decode.
pub const MAX_CURSOR_BYTES: usize = 8192;

fn cursor(s: &str) -> Result<String, FieldError> {
    if s.is_empty() || s.len() > MAX_CURSOR_BYTES {
        Err(FieldError::Invalid("a cursor returned by the server"))
    } else {
        Ok(s.to_owned())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sync {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// A conversation: with a user, or a group.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Conversation {
    With(UserId),
    Group(GroupId),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct History {
    #[serde(flatten)]
    pub conversation: Conversation,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

impl History {
    pub const DEFAULT_LIMIT: u32 = 50;
    pub const MAX_LIMIT: u32 = 100;
}

pub(super) fn parse_sync(f: &Fields<'_>) -> Result<Sync, Problem> {
    Ok(Sync {
        cursor: f.opt_parsed("cursor", cursor)?,
    })
}

pub(super) fn parse_history(f: &Fields<'_>) -> Result<History, Problem> {
    let conversation = if f.one_of("with", "group")? {
        Conversation::With(f.parsed("with", UserId::parse)?)
    } else {
        Conversation::Group(f.parsed("group", GroupId::parse)?)
    };
    Ok(History {
        conversation,
        before: f.opt_parsed("before", cursor)?,
        limit: f.opt_uint("limit", 1, u64::from(History::MAX_LIMIT))?.map(|l| l as u32),
    })
}
