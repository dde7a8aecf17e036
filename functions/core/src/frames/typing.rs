//! `typing`: the sender is (or stopped) typing to a peer or in a group. Forwarded, never stored.

use super::{Problem, Target, fields::Fields};
use crate::ids::{GroupId, UserId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TypingState {
    Start,
    Stop,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TypingFrame {
    #[serde(flatten)]
    pub target: Target,
    pub state: TypingState,
}

pub(super) fn parse(f: &Fields<'_>) -> Result<TypingFrame, Problem> {
    let target = if f.one_of("to", "group")? {
        Target::To(f.parsed("to", UserId::parse)?)
    } else {
        Target::Group(f.parsed("group", GroupId::parse)?)
    };
    let state = match f.opt_str("state")? {
        None | Some("start") => TypingState::Start,
        Some("stop") => TypingState::Stop,
        Some(_) => return Err(Problem::bad("`state` must be start or stop")),
    };
    Ok(TypingFrame { target, state })
}
