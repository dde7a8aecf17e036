//! `friends`: add, remove, list.

use super::{Problem, fields::Fields};
use crate::ids::UserId;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum FriendsOp {
    Add { user: UserId },
    Remove { user: UserId },
    List,
}

pub(super) fn parse(f: &Fields<'_>) -> Result<FriendsOp, Problem> {
    const OPS: &str = "add, remove, list";
    match f.op(OPS)? {
        "add" => Ok(FriendsOp::Add {
            user: f.parsed("user", UserId::parse)?,
        }),
        "remove" => Ok(FriendsOp::Remove {
            user: f.parsed("user", UserId::parse)?,
        }),
        "list" => Ok(FriendsOp::List),
        _ => Err(Problem::bad(format!("`op` must be one of {OPS}"))),
    }
}
