//! Sealed cursors: what the server hands a client to continue a page (`next`, `cursor`, `before`) carries an
//! HMAC-SHA256 tag over the user it was issued to, what it pages (a sync, one conversation's history) and its
//! content, under a key of the deployment. A client can only hand back, unchanged, a cursor issued to itself for
//! the same thing: a hand-made or altered one, or another user's, opens to nothing (`bad_request`).
//!
//! The tag does not hide the content (base64url JSON or a position); nothing in it is secret from the user it was
//! issued to. Sealing is what stops a member added late from asking for the group's sequence 0.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Bytes of the tag a cursor carries: 128 bits, far beyond guessing within any rate limit.
const TAG_BYTES: usize = 16;
/// The shortest key accepted.
pub const MIN_KEY_BYTES: usize = 32;

/// The deployment's cursor key (a Secrets Manager secret on AWS, `CURSOR_KEY_ARN`). Its `Debug` shows no byte.
#[derive(Clone, PartialEq, Eq)]
pub struct CursorKey(Vec<u8>);

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey(..)")
    }
}

impl CursorKey {
    /// A key from a secret's value: at least 32 bytes.
    pub fn from_secret(secret: &str) -> Result<Self, String> {
        if secret.len() < MIN_KEY_BYTES {
            return Err(format!("the cursor key must be at least {MIN_KEY_BYTES} bytes"));
        }
        Ok(Self(secret.as_bytes().to_vec()))
    }

    /// A key of this process only: unit tests, and a function that issues no cursor. Cursors sealed with it open
    /// nowhere else.
    pub fn random() -> Self {
        let mut key = vec![0u8; 32];
        getrandom::fill(&mut key).expect("the operating system's random source");
        Self(key)
    }

    fn tag(&self, user: &str, scope: &str, content: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        // Lengths first, so that no two (user, scope, content) share the bytes the tag covers.
        for part in [user.as_bytes(), scope.as_bytes()] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.update(content);
        mac
    }

    /// `content` sealed for `user` and `scope` (what it pages): `base64url(content).base64url(tag)`.
    pub fn seal(&self, user: &str, scope: &str, content: &[u8]) -> String {
        let tag = self.tag(user, scope, content).finalize().into_bytes();
        format!("{}.{}", B64.encode(content), B64.encode(&tag[..TAG_BYTES]))
    }

    /// The content of a cursor sealed with this key for `user` and `scope`; `None` for anything else.
    pub fn open(&self, user: &str, scope: &str, cursor: &str) -> Option<Vec<u8>> {
        let (content, tag) = cursor.split_once('.')?;
        let (content, tag) = (B64.decode(content).ok()?, B64.decode(tag).ok()?);
        if tag.len() != TAG_BYTES {
            return None;
        }
        // Compared in constant time: a timing oracle would let the tag be found byte by byte.
        self.tag(user, scope, &content).verify_truncated_left(&tag).ok()?;
        Some(content)
    }
}

impl CursorKey {
    /// The position a cursor names, opened and parsed: `bad_request` naming `field` for a cursor this key did
    /// not seal for `user` and `scope`, or whose content does not parse.
    pub fn open_position<T>(
        &self,
        user: &str,
        scope: &str,
        field: &str,
        cursor: &str,
        parse: impl FnOnce(&[u8]) -> Option<T>,
    ) -> Result<T, crate::error::Failure> {
        self.open(user, scope, cursor)
            .and_then(|content| parse(&content))
            .ok_or_else(|| crate::error::bad_request(format!("`{field}` is not a cursor this server returned")))
    }
}

/// The text of a cursor's content, for positions that are ids or numbers.
pub fn text(content: &[u8]) -> Option<&str> {
    std::str::from_utf8(content).ok()
}

impl Default for CursorKey {
    fn default() -> Self {
        Self::random()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_opens_only_unchanged_for_its_user_and_scope_under_its_key() {
        let key = CursorKey::from_secret(&"k".repeat(32)).unwrap();
        let sealed = key.seal("alice", "sync", b"{\"at\":5}");
        assert_eq!(key.open("alice", "sync", &sealed).as_deref(), Some(&b"{\"at\":5}"[..]));
        assert_eq!(key.open("bob", "sync", &sealed), None, "another user");
        assert_eq!(key.open("alice", "history:g1", &sealed), None, "another scope");
        assert_eq!(CursorKey::random().open("alice", "sync", &sealed), None, "another key");
        // Any altered content or tag.
        let (content, tag) = sealed.split_once('.').unwrap();
        let forged = format!("{}.{tag}", B64.encode(b"{\"at\":0}"));
        assert_eq!(key.open("alice", "sync", &forged), None);
        let mut bad_tag = B64.decode(tag).unwrap();
        bad_tag[0] ^= 1;
        assert_eq!(
            key.open("alice", "sync", &format!("{content}.{}", B64.encode(&bad_tag))),
            None
        );
        for junk in [
            "",
            ".",
            "abc",
            "abc.",
            ".abc",
            "a.b.c",
            &format!("{content}.{}", &tag[..10]),
        ] {
            assert_eq!(key.open("alice", "sync", junk), None, "{junk:?}");
        }
        // User and scope boundaries cannot be shifted.
        assert_eq!(key.open("alic", "esync", &sealed), None);
    }

    #[test]
    fn a_short_key_is_refused_and_no_key_is_printed() {
        assert!(CursorKey::from_secret("short").is_err());
        let key = CursorKey::from_secret(&"s".repeat(40)).unwrap();
        assert_eq!(format!("{key:?}"), "CursorKey(..)");
    }
}
