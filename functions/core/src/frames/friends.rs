//! `friends`: add (ask, or accept a request), remove (end, withdraw or decline), block, unblock, list.

use super::{Problem, fields::Fields};
use crate::ids::UserId;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum FriendsOp {
    Add { user: UserId },
    Remove { user: UserId },
    Block { user: UserId },
    Unblock { user: UserId },
    List,
}

pub(super) fn parse(f: &Fields<'_>) -> Result<FriendsOp, Problem> {
    const OPS: &str = "add, remove, block, unblock, list";
    match f.op(OPS)? {
        "add" => Ok(FriendsOp::Add {
            user: f.parsed("user", UserId::parse)?,
        }),
        "remove" => Ok(FriendsOp::Remove {
            user: f.parsed("user", UserId::parse)?,
        }),
        "block" => Ok(FriendsOp::Block {
            user: f.parsed("user", UserId::parse)?,
        }),
        "unblock" => Ok(FriendsOp::Unblock {
            user: f.parsed("user", UserId::parse)?,
        }),
        "list" => Ok(FriendsOp::List),
        _ => Err(Problem::bad(format!("`op` must be one of {OPS}"))),
    }
}
