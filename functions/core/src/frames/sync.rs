//! `sync`: everything the user missed, page by page.

use super::{Problem, fields::Fields};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncFrame {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

pub(super) fn parse(f: &Fields<'_>) -> Result<SyncFrame, Problem> {
    Ok(SyncFrame {
        cursor: f.opt_parsed("cursor", super::fields::cursor)?,
    })
}
