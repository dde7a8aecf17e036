//! Attachments: pictures and files that travel beside a message, never through API Gateway or Lambda.
//!
//! The bytes go straight between the client and object storage (S3) with presigned requests: `attach` answers
//! a presigned PUT, `send` names the uploaded ids, and pushes, `sync` and `history` carry presigned GETs. The
//! object key holds its owner (`a/{user}/{id}`), so a send checks ownership, existence and size with one
//! HeadObject per attachment and no table of its own.
//!
//! The port ([`ObjectStore`]) is object-safe like [`crate::notify::Notifier`]: [`crate::service::App`] holds one
//! without another type parameter, and only the functions that sign or check attachments build an S3 client.

use crate::{
    error::BackendError,
    ids::{FieldError, UserId},
};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An attachment's id: a ULID the server draws at `attach`, so ids never collide and cannot be guessed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AttachmentId(String);

impl AttachmentId {
    pub fn generate() -> Self {
        // Random in all 80 bits after the time: the key of another user's upload cannot be guessed.
        let mut random = [0u8; 10];
        getrandom::fill(&mut random).unwrap_or_default();
        let bits = random.iter().fold(0u128, |acc, b| (acc << 8) | u128::from(*b));
        Self(ulid::Ulid::from_parts(crate::now_ms() as u64, bits).to_string())
    }

    pub fn parse(s: &str) -> Result<Self, FieldError> {
        Self::try_from(s.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AttachmentId {
    type Error = FieldError;
    fn try_from(s: String) -> Result<Self, FieldError> {
        match ulid::Ulid::from_string(&s) {
            // Canonical form only: one attachment has one key.
            Ok(u) if u.to_string() == s => Ok(Self(s)),
            _ => Err(FieldError::Invalid("an attachment id returned by `attach`")),
        }
    }
}

impl From<AttachmentId> for String {
    fn from(v: AttachmentId) -> String {
        v.0
    }
}

/// A MIME type as `type/subtype` (parameters such as `; charset=` are not accepted): at most 100 characters of
/// the token characters RFC 9110 allows, lowercased.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContentType(String);

impl ContentType {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(s: &str) -> Result<Self, FieldError> {
        Self::try_from(s.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What a conversation preview says for an attachment sent without text.
    pub fn preview(&self) -> &'static str {
        match self.0.split('/').next() {
            Some("image") => "📷 Photo",
            Some("video") => "🎥 Video",
            Some("audio") => "🎤 Audio",
            _ => "📎 File",
        }
    }
}

impl TryFrom<String> for ContentType {
    type Error = FieldError;
    fn try_from(s: String) -> Result<Self, FieldError> {
        let token = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
        };
        match s.split_once('/') {
            Some((t, sub)) if s.len() <= Self::MAX_CHARS && token(t) && token(sub) => Ok(Self(s.to_ascii_lowercase())),
            _ => Err(FieldError::Invalid("a MIME type such as image/jpeg")),
        }
    }
}

impl From<ContentType> for String {
    fn from(v: ContentType) -> String {
        v.0
    }
}

/// An attachment as a message stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    pub id: AttachmentId,
    pub content_type: ContentType,
    pub size: u64,
}

/// An attachment as a reader is shown it: with a short-lived download URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentLink {
    pub id: AttachmentId,
    pub content_type: ContentType,
    pub size: u64,
    pub url: String,
    /// When `url` stops working (epoch ms).
    pub expires_at: i64,
}

/// Where an attachment's bytes live: its owner is part of the key, so a key names whose upload it is.
pub fn object_key(owner: &UserId, id: &AttachmentId) -> String {
    format!("a/{owner}/{}", id.as_str())
}

/// A presigned request the client makes itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presigned {
    pub url: String,
    /// Headers the client must send exactly as given (they are part of the signature).
    pub headers: BTreeMap<String, String>,
}

/// What storage holds under a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub size: u64,
    pub content_type: Option<String>,
    /// The size announced at `attach` (signed into the upload as `x-amz-meta-size`).
    pub announced_size: Option<u64>,
}

/// The metadata header an upload must carry: the size announced at `attach`.
pub const SIZE_HEADER: &str = "x-amz-meta-size";

pub type Res<T> = Result<T, BackendError>;

/// Object storage for attachments (S3 on AWS, `aws::s3`; a map in tests).
pub trait ObjectStore: Send + Sync {
    /// Whether this deployment has a bucket for attachments.
    fn enabled(&self) -> bool;
    /// A PUT of exactly `size` bytes of `content_type` to `key`, valid for `ttl_secs`. The length and the type
    /// are signed, so storage refuses any other upload.
    fn upload<'a>(
        &'a self,
        key: &'a str,
        content_type: &'a ContentType,
        size: u64,
        ttl_secs: u64,
    ) -> BoxFuture<'a, Res<Presigned>>;
    /// A GET of `key`, valid for `ttl_secs` (signing only: no call to storage).
    fn download<'a>(&'a self, key: &'a str, ttl_secs: u64) -> BoxFuture<'a, Res<String>>;
    /// What is stored under `key`, if anything (one HeadObject).
    fn head<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Res<Option<StoredObject>>>;
    /// Deletes what is stored under `key` (nothing there is fine).
    fn delete(&self, key: String) -> BoxFuture<'_, Res<()>>;
}

/// A deployment without an attachment bucket: `attach` is refused.
#[derive(Debug, Default)]
pub struct NoObjects;

impl ObjectStore for NoObjects {
    fn enabled(&self) -> bool {
        false
    }

    fn upload<'a>(&'a self, _: &'a str, _: &'a ContentType, _: u64, _: u64) -> BoxFuture<'a, Res<Presigned>> {
        Box::pin(async { Err(BackendError::corrupt("objects", "no attachment bucket is configured")) })
    }

    fn download<'a>(&'a self, _: &'a str, _: u64) -> BoxFuture<'a, Res<String>> {
        Box::pin(async { Err(BackendError::corrupt("objects", "no attachment bucket is configured")) })
    }

    fn head<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Res<Option<StoredObject>>> {
        Box::pin(async { Ok(None) })
    }

    fn delete(&self, _: String) -> BoxFuture<'_, Res<()>> {
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_are_type_slash_subtype() {
        assert_eq!(ContentType::parse("Image/PNG").unwrap().as_str(), "image/png");
        assert!(ContentType::parse("application/vnd.ms-excel").is_ok());
        for bad in [
            "image",
            "/png",
            "image/",
            "text/html; charset=utf-8",
            "a/b/c",
            "im age/png",
        ] {
            assert!(ContentType::parse(bad).is_err(), "{bad}");
        }
        assert!(ContentType::parse(&format!("a/{}", "b".repeat(99))).is_err());
    }

    #[test]
    fn attachment_ids_are_canonical_ulids() {
        let id = AttachmentId::generate();
        assert_eq!(AttachmentId::parse(id.as_str()).unwrap(), id);
        assert!(AttachmentId::parse(&id.as_str().to_lowercase()).is_err());
        assert!(AttachmentId::parse("../../etc").is_err());
    }

    #[test]
    fn keys_name_the_owner() {
        let id = AttachmentId::parse("01J9ZQ5V0000000000000000AB").unwrap();
        assert_eq!(
            object_key(&UserId::parse("bob").unwrap(), &id),
            "a/bob/01J9ZQ5V0000000000000000AB"
        );
    }
}
