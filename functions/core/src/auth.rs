//! Connection tokens: HS256 JWTs whose `sub` is the user id. Verified by the `$connect` authorizer; minted by
//! natter-local for development and by tests.

use crate::ids::UserId;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};

/// The secret natter-local uses unless `NATTER_JWT_SECRET` is set.
pub const DEV_SECRET: &str = "natter-local-development-secret-key";
/// HS256 secrets shorter than this are refused at init.
pub const MIN_SECRET_BYTES: usize = 32;
/// Tokens longer than this are refused before any decoding.
pub const MAX_TOKEN_BYTES: usize = 4096;
/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 30;

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
}

/// Why a token was refused. Never carries the token itself (tokens stay out of logs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("no token")]
    Missing,
    #[error("token larger than {MAX_TOKEN_BYTES} bytes")]
    TooLong,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("token signature or algorithm not accepted")]
    BadSignature,
    #[error("token lacks a valid `sub`")]
    BadSubject,
    #[error("token malformed")]
    Malformed,
}

#[derive(Debug, thiserror::Error)]
#[error("the JWT secret must be at least {MIN_SECRET_BYTES} bytes")]
pub struct WeakSecret;

/// Verifies tokens with one HS256 secret.
#[derive(Clone)]
pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl TokenVerifier {
    pub fn new(secret: &[u8]) -> Result<Self, WeakSecret> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(WeakSecret);
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Ok(Self {
            key: DecodingKey::from_secret(secret),
            validation,
        })
    }

    /// The user a token speaks for, or why it is refused. Only HS256 is accepted (`alg: none` and every other
    /// algorithm fail), `exp` is required, `nbf` is honoured, and `sub` must be a valid user id.
    pub fn verify(&self, token: &str) -> Result<UserId, TokenError> {
        if token.is_empty() {
            return Err(TokenError::Missing);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLong);
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => TokenError::Expired,
            ErrorKind::ImmatureSignature => TokenError::NotYetValid,
            ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                TokenError::BadSignature
            }
            ErrorKind::MissingRequiredClaim(c) if c == "sub" => TokenError::BadSubject,
            _ => TokenError::Malformed,
        })?;
        UserId::parse(&data.claims.sub).map_err(|_| TokenError::BadSubject)
    }
}

/// Mints an HS256 token for `user`, valid for `ttl_secs` from now.
pub fn mint(secret: &[u8], user: &UserId, ttl_secs: u64) -> String {
    let now = jsonwebtoken::get_current_timestamp();
    let claims = Claims {
        sub: user.to_string(),
        exp: now + ttl_secs,
        nbf: None,
        iat: Some(now),
    };
    sign(secret, &claims)
}

/// Signs arbitrary claims with HS256 (tests use it for tokens that must be refused).
pub fn sign(secret: &[u8], claims: &impl Serialize) -> String {
    // HMAC signing of a serializable struct cannot fail.
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    fn verifier() -> TokenVerifier {
        TokenVerifier::new(SECRET).unwrap()
    }

    #[test]
    fn a_minted_token_names_its_user() {
        let t = mint(SECRET, &UserId::parse("alice").unwrap(), 60);
        assert_eq!(verifier().verify(&t).unwrap().as_str(), "alice");
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(TokenVerifier::new(b"short").is_err());
    }

    #[test]
    fn every_kind_of_bad_token_is_refused() {
        let v = verifier();
        let claims = |sub: &str, exp: u64| serde_json::json!({"sub": sub, "exp": exp});
        assert_eq!(v.verify(""), Err(TokenError::Missing));
        assert_eq!(v.verify("not.a.jwt"), Err(TokenError::Malformed));
        assert_eq!(v.verify("garbage"), Err(TokenError::Malformed));
        assert_eq!(v.verify(&"a".repeat(5000)), Err(TokenError::TooLong));
        let wrong_key = sign(b"another-secret-another-secret-xx", &claims("alice", now() + 60));
        assert_eq!(v.verify(&wrong_key), Err(TokenError::BadSignature));
        let expired = sign(SECRET, &claims("alice", now() - 120));
        assert_eq!(v.verify(&expired), Err(TokenError::Expired));
        let within_leeway = sign(SECRET, &claims("alice", now() - 10));
        assert!(v.verify(&within_leeway).is_ok(), "30 s of leeway");
        let no_exp = sign(SECRET, &serde_json::json!({"sub": "alice"}));
        assert!(v.verify(&no_exp).is_err());
        let no_sub = sign(SECRET, &serde_json::json!({"exp": now() + 60}));
        assert!(v.verify(&no_sub).is_err());
        let bad_sub = sign(SECRET, &claims("al ice", now() + 60));
        assert_eq!(v.verify(&bad_sub), Err(TokenError::BadSubject));
        let future = sign(
            SECRET,
            &serde_json::json!({"sub": "alice", "exp": now() + 600, "nbf": now() + 300}),
        );
        assert_eq!(v.verify(&future), Err(TokenError::NotYetValid));
    }

    #[test]
    fn alg_none_and_other_algorithms_are_refused() {
        let v = verifier();
        let payload = B64.encode(serde_json::json!({"sub": "alice", "exp": now() + 60}).to_string());
        for alg in ["none", "HS512", "RS256"] {
            let header = B64.encode(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
            let token = format!("{header}.{payload}.");
            assert!(v.verify(&token).is_err(), "{alg}");
        }
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &serde_json::json!({"sub": "alice", "exp": now() + 60}),
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        assert_eq!(v.verify(&hs512), Err(TokenError::BadSignature));
    }
}
