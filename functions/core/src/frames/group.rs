//! `group`: create, add, remove, leave, members, list; and invitations: join, decline, invites.

use super::{Problem, fields::Fields};
use crate::ids::{GroupId, GroupName, UserId};
use serde::Serialize;

/// The most members a `create` frame may name (more join with `add`).
pub const MAX_CREATE_MEMBERS: usize = 1000;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum GroupOp {
    Create {
        name: GroupName,
        members: Vec<UserId>,
    },
    Add {
        group: GroupId,
        user: UserId,
    },
    Remove {
        group: GroupId,
        user: UserId,
    },
    Leave {
        group: GroupId,
    },
    Members {
        group: GroupId,
    },
    /// One page of the caller's groups, after the page `cursor` ended.
    List {
        #[serde(skip_serializing_if = "Option::is_none")]
        cursor: Option<String>,
    },
    /// Accepts an invitation.
    Join {
        group: GroupId,
    },
    /// Declines an invitation.
    Decline {
        group: GroupId,
    },
    /// The caller's newest invitations.
    Invites,
}

pub(super) fn parse(f: &Fields<'_>) -> Result<GroupOp, Problem> {
    const OPS: &str = "create, add, remove, leave, members, list, join, decline, invites";
    match f.op(OPS)? {
        "create" => {
            let name = f.parsed("name", GroupName::parse)?;
            let mut members = if f.has("members") {
                f.list("members", 0, MAX_CREATE_MEMBERS, UserId::parse)?
            } else {
                Vec::new()
            };
            members.sort();
            members.dedup();
            Ok(GroupOp::Create { name, members })
        }
        "add" => Ok(GroupOp::Add {
            group: f.parsed("group", GroupId::parse)?,
            user: f.parsed("user", UserId::parse)?,
        }),
        "remove" => Ok(GroupOp::Remove {
            group: f.parsed("group", GroupId::parse)?,
            user: f.parsed("user", UserId::parse)?,
        }),
        "leave" => Ok(GroupOp::Leave {
            group: f.parsed("group", GroupId::parse)?,
        }),
        "members" => Ok(GroupOp::Members {
            group: f.parsed("group", GroupId::parse)?,
        }),
        "list" => Ok(GroupOp::List {
            cursor: f.opt_parsed("cursor", super::fields::cursor)?,
        }),
        "join" => Ok(GroupOp::Join {
            group: f.parsed("group", GroupId::parse)?,
        }),
        "decline" => Ok(GroupOp::Decline {
            group: f.parsed("group", GroupId::parse)?,
        }),
        "invites" => Ok(GroupOp::Invites),
        _ => Err(Problem::bad(format!("`op` must be one of {OPS}"))),
    }
}
