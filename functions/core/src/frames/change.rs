//! `edit`, `delete` and `react`: changes to a message after it was sent.

use super::{Problem, fields::Fields};
use crate::ids::{Body, FieldError, MessageId};
use serde::Serialize;

/// The sender replaces the body of its message.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EditFrame {
    pub message_id: MessageId,
    pub body: Body,
}

/// The sender deletes its message for everyone.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteFrame {
    pub message_id: MessageId,
}

/// A reader sets (or, with `emoji` empty, removes) its one reaction to a message.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReactFrame {
    pub message_id: MessageId,
    /// `None`: remove the reader's reaction (sent as `""`).
    #[serde(serialize_with = "emoji_or_empty")]
    pub emoji: Option<Emoji>,
}

fn emoji_or_empty<S: serde::Serializer>(e: &Option<Emoji>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(e.as_ref().map_or("", Emoji::as_str))
}

/// One emoji: at most 32 bytes, no letters, digits, spaces or control characters of ASCII (a sequence such as a
/// flag or a family is several code points, so it is not checked against Unicode's emoji list, which changes
/// every year; the byte bound is what keeps storage and pushes small).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Emoji(String);

impl Emoji {
    pub const MAX_BYTES: usize = 32;

    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let bad = || FieldError::Invalid("one emoji of at most 32 bytes, or \"\" to remove");
        if s.is_empty() || s.len() > Self::MAX_BYTES || s.is_ascii() {
            return Err(bad());
        }
        if s.chars()
            .any(|c| c.is_ascii_alphanumeric() || c.is_whitespace() || c.is_control())
        {
            return Err(bad());
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub(super) fn parse_edit(f: &Fields<'_>) -> Result<EditFrame, Problem> {
    Ok(EditFrame {
        message_id: f.parsed("messageId", MessageId::parse)?,
        body: f.parsed("body", Body::parse)?,
    })
}

pub(super) fn parse_delete(f: &Fields<'_>) -> Result<DeleteFrame, Problem> {
    Ok(DeleteFrame {
        message_id: f.parsed("messageId", MessageId::parse)?,
    })
}

pub(super) fn parse_react(f: &Fields<'_>) -> Result<ReactFrame, Problem> {
    let message_id = f.parsed("messageId", MessageId::parse)?;
    let emoji = match f.str("emoji")? {
        "" => None,
        e => Some(Emoji::parse(e).map_err(|e| Problem::field("emoji", e))?),
    };
    Ok(ReactFrame { message_id, emoji })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emoji_is_short_and_not_text() {
        for ok in ["👍", "❤️", "🇫🇷", "👨‍👩‍👧‍👦", "🙂"] {
            assert!(Emoji::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "+1", "ok", "👍 👍", "a👍", "\u{7}", &"👍".repeat(9)] {
            assert!(Emoji::parse(bad).is_err(), "{bad:?}");
        }
    }
}
