//! Validated identifiers. Each can only be made through `parse`, so a value of these types is always valid.

use serde::{Deserialize, Serialize};
use std::{fmt, time::SystemTime};

/// Why a field was refused; the frame parser turns it into a `bad_request` or `too_large` error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("must be {0}")]
    Invalid(&'static str),
    #[error("is larger than {limit} bytes")]
    TooLarge { limit: usize },
}

fn chars_ok(s: &str, max: usize, extra: &[u8]) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
}

macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident, max = $max:expr, extra = $extra:expr, rule = $rule:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The longest accepted value, in bytes.
            pub const MAX_LEN: usize = $max;
            /// What a valid value looks like, for error messages.
            pub const RULE: &'static str = $rule;

            pub fn parse(s: &str) -> Result<Self, FieldError> {
                if chars_ok(s, $max, $extra) { Ok(Self(s.to_owned())) } else { Err(FieldError::Invalid($rule)) }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = FieldError;
            fn try_from(s: String) -> Result<Self, FieldError> {
                if chars_ok(&s, $max, $extra) { Ok(Self(s)) } else { Err(FieldError::Invalid($rule)) }
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

text_id!(
    /// A user id: the JWT `sub`, 1-64 chars of `[A-Za-z0-9_.-]`.
    UserId, max = 64, extra = b"_.-", rule = "1-64 characters of A-Z a-z 0-9 _ . -"
);
text_id!(
    /// A group id, made by the server (a ULID) but accepted in the user id alphabet.
    GroupId, max = 64, extra = b"_.-", rule = "1-64 characters of A-Z a-z 0-9 _ . -"
);
text_id!(
    /// The sender's idempotency key for a send: 1-64 chars of `[A-Za-z0-9_-]`.
    ClientMsgId, max = 64, extra = b"_-", rule = "1-64 characters of A-Z a-z 0-9 _ -"
);
text_id!(
    /// The sending device's own id, which scopes its one-on-one `seq` numbers: 1-32 chars of `[A-Za-z0-9_-]`.
    DeviceId, max = 32, extra = b"_-", rule = "1-32 characters of A-Z a-z 0-9 _ -"
);
text_id!(
    /// An API Gateway connection id (base64-like, e.g. `TWegAcC4EowCHnA=`).
    ConnectionId, max = 128, extra = b"_-=+/", rule = "an API Gateway connection id"
);

impl GroupId {
    /// A fresh, time-sortable group id.
    pub fn generate(now_ms: i64) -> Self {
        Self(MessageId::generate(now_ms).to_string())
    }
}

/// A message id: a ULID whose 48-bit time part is the message's server timestamp, so the Messages key
/// (message_id, timestamp) can be derived from the id alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MessageId(ulid::Ulid);

impl MessageId {
    /// A new id for a message stored at `now_ms`.
    pub fn generate(now_ms: i64) -> Self {
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(now_ms.max(0) as u64);
        Self(ulid::Ulid::from_datetime(at))
    }

    pub fn parse(s: &str) -> Result<Self, FieldError> {
        if s.len() != 26 {
            return Err(FieldError::Invalid("a 26-character ULID"));
        }
        ulid::Ulid::from_string(s)
            .map(Self)
            .map_err(|_| FieldError::Invalid("a 26-character ULID"))
    }

    /// The smallest id of a message stored at `at_ms`: every id stored at or after it sorts after it.
    pub fn floor(at_ms: i64) -> Self {
        Self(ulid::Ulid::from_parts(at_ms.max(0) as u64, 0))
    }

    /// The server timestamp (epoch ms) the message was stored with: the sort key of its Messages item.
    pub fn timestamp(&self) -> i64 {
        self.0.timestamp_ms() as i64
    }
}

impl TryFrom<String> for MessageId {
    type Error = FieldError;
    fn try_from(s: String) -> Result<Self, FieldError> {
        Self::parse(&s)
    }
}

impl From<MessageId> for String {
    fn from(v: MessageId) -> String {
        v.0.to_string()
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A message body: up to 16384 bytes of UTF-8, opaque to the server; empty only on a message with attachments.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Body(String);

impl Body {
    pub const MAX_BYTES: usize = 16384;
    /// How many characters of a body a conversation preview shows.
    pub const PREVIEW_CHARS: usize = 64;

    /// A body a client sends: 1 to 16384 bytes.
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        if s.is_empty() {
            return Err(FieldError::Invalid("a non-empty string"));
        }
        Self::try_from(s.to_owned())
    }

    /// The body of a message that carries attachments: may be empty.
    pub fn parse_or_empty(s: &str) -> Result<Self, FieldError> {
        Self::try_from(s.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first 64 characters (not bytes: a preview never splits a character).
    pub fn preview(&self) -> String {
        self.0.chars().take(Self::PREVIEW_CHARS).collect()
    }
}

impl TryFrom<String> for Body {
    type Error = FieldError;
    fn try_from(s: String) -> Result<Self, FieldError> {
        // Empty only with attachments: `parse` refuses it for a client's text; stored messages may have it.
        if s.len() > Self::MAX_BYTES {
            Err(FieldError::TooLarge { limit: Self::MAX_BYTES })
        } else {
            Ok(Self(s))
        }
    }
}

impl From<Body> for String {
    fn from(v: Body) -> String {
        v.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_follow_the_token_subject_pattern() {
        assert!(UserId::parse("alice").is_ok());
        assert!(UserId::parse("a.b-c_D9").is_ok());
        assert!(UserId::parse(&"x".repeat(64)).is_ok());
        assert!(UserId::parse(&"x".repeat(65)).is_err());
        assert!(UserId::parse("").is_err());
        assert!(UserId::parse("al ice").is_err());
        assert!(
            UserId::parse("alice#1").is_err(),
            "# separates key parts and must never appear in an id"
        );
        assert!(UserId::parse("ålice").is_err());
    }

    #[test]
    fn client_msg_ids_refuse_dots() {
        assert!(ClientMsgId::parse("01J9Z-abc_1").is_ok());
        assert!(ClientMsgId::parse("a.b").is_err());
    }

    #[test]
    fn body_limit_is_in_bytes_not_characters() {
        assert!(Body::parse(&"a".repeat(16384)).is_ok());
        assert_eq!(
            Body::parse(&"a".repeat(16385)),
            Err(FieldError::TooLarge { limit: 16384 })
        );
        // 4096 four-byte characters are exactly 16384 bytes; one more is too large.
        assert!(Body::parse(&"😀".repeat(4096)).is_ok());
        assert!(matches!(
            Body::parse(&"😀".repeat(4097)),
            Err(FieldError::TooLarge { .. })
        ));
        assert_eq!(Body::parse(""), Err(FieldError::Invalid("a non-empty string")));
    }

    #[test]
    fn preview_takes_characters() {
        let b = Body::parse(&"é".repeat(100)).unwrap();
        assert_eq!(b.preview().chars().count(), 64);
    }

    #[test]
    fn message_id_carries_its_timestamp() {
        let id = MessageId::generate(1_700_000_000_123);
        assert_eq!(id.timestamp(), 1_700_000_000_123);
        let parsed = MessageId::parse(&id.to_string()).unwrap();
        assert_eq!(parsed, id);
        assert!(MessageId::parse("not-a-ulid").is_err());
        assert!(MessageId::parse("01J9ZZZZZZZZZZZZZZZZZZZZZZZ").is_err());
    }

    #[test]
    fn message_ids_sort_by_time() {
        let a = MessageId::generate(1000);
        let b = MessageId::generate(2000);
        assert!(a < b);
        assert!(a.to_string() < b.to_string());
    }
}

/// A group's display name: 1-100 characters, no control characters, not blank.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GroupName(String);

impl GroupName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(s: &str) -> Result<Self, FieldError> {
        Self::try_from(s.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for GroupName {
    type Error = FieldError;
    fn try_from(s: String) -> Result<Self, FieldError> {
        let n = s.chars().count();
        if s.trim().is_empty() || n > Self::MAX_CHARS || s.chars().any(char::is_control) {
            Err(FieldError::Invalid(
                "1-100 characters, not blank, without control characters",
            ))
        } else {
            Ok(Self(s))
        }
    }
}

impl From<GroupName> for String {
    fn from(v: GroupName) -> String {
        v.0
    }
}

#[cfg(test)]
mod name_tests {
    use super::*;

    #[test]
    fn group_names_are_bounded_and_printable() {
        assert!(GroupName::parse("Weekend hikes 🥾").is_ok());
        assert!(GroupName::parse(&"n".repeat(100)).is_ok());
        assert!(GroupName::parse(&"n".repeat(101)).is_err());
        assert!(GroupName::parse("   ").is_err());
        assert!(GroupName::parse("a\nb").is_err());
    }
}
