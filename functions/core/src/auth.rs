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
/// Clock skew tolerated on `exp`, `nbf` and `iat`.
pub const LEEWAY_SECS: u64 = 30;
/// The longest a token may live (`exp - iat`) unless the deployment says otherwise: a stolen token is worth a
/// day at most, and a connection outlives its token by at most API Gateway's two hours.
pub const DEFAULT_MAX_LIFETIME_SECS: u64 = 86_400;

/// What a deployment asks of a token beyond its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRules {
    /// `exp - iat` (or `exp - now` for a token without `iat`) may not exceed this.
    pub max_lifetime_secs: u64,
    /// When set, `iss` must be present and equal.
    pub issuer: Option<String>,
    /// When set, `aud` must be present and name it.
    pub audience: Option<String>,
}

impl Default for TokenRules {
    fn default() -> Self {
        Self {
            max_lifetime_secs: DEFAULT_MAX_LIFETIME_SECS,
            issuer: None,
            audience: None,
        }
    }
}

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
    #[error("token lives longer than this deployment allows")]
    TooLongLived,
    #[error("token issued by someone else (`iss`)")]
    WrongIssuer,
    #[error("token meant for someone else (`aud`)")]
    WrongAudience,
    #[error("token malformed")]
    Malformed,
}

#[derive(Debug, thiserror::Error)]
#[error("the JWT secret must be at least {MIN_SECRET_BYTES} bytes")]
pub struct WeakSecret;

/// Verifies tokens with one HS256 secret and the deployment's [`TokenRules`].
#[derive(Clone)]
pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
    max_lifetime_secs: u64,
}

impl TokenVerifier {
    /// A verifier with the default rules (a day at most, any issuer and audience).
    pub fn new(secret: &[u8]) -> Result<Self, WeakSecret> {
        Self::with_rules(secret, &TokenRules::default())
    }

    pub fn with_rules(secret: &[u8], rules: &TokenRules) -> Result<Self, WeakSecret> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(WeakSecret);
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        // jsonwebtoken checks `iss` and `aud` only when the token has them: a configured one must also be present.
        if let Some(issuer) = &rules.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        match &rules.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            // Without a configured audience a token's `aud` is no one's business (jsonwebtoken would refuse it).
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        Ok(Self {
            key: DecodingKey::from_secret(secret),
            validation,
            max_lifetime_secs: rules.max_lifetime_secs,
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
            ErrorKind::MissingRequiredClaim(c) if c == "iss" => TokenError::WrongIssuer,
            ErrorKind::MissingRequiredClaim(c) if c == "aud" => TokenError::WrongAudience,
            ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
            ErrorKind::InvalidAudience => TokenError::WrongAudience,
            _ => TokenError::Malformed,
        })?;
        self.check_lifetime(&data.claims)?;
        UserId::parse(&data.claims.sub).map_err(|_| TokenError::BadSubject)
    }

    /// A token may not be issued in the future, nor live longer than the deployment allows; one without `iat`
    /// counts its lifetime from now.
    fn check_lifetime(&self, claims: &Claims) -> Result<(), TokenError> {
        let now = jsonwebtoken::get_current_timestamp();
        let issued = match claims.iat {
            Some(iat) if iat > now + LEEWAY_SECS => return Err(TokenError::NotYetValid),
            Some(iat) => iat,
            None => now,
        };
        if claims.exp.saturating_sub(issued) > self.max_lifetime_secs {
            return Err(TokenError::TooLongLived);
        }
        Ok(())
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
    fn a_token_lives_no_longer_than_the_deployment_allows() {
        let v = TokenVerifier::with_rules(
            SECRET,
            &TokenRules {
                max_lifetime_secs: 3600,
                ..TokenRules::default()
            },
        )
        .unwrap();
        let token = |claims: serde_json::Value| sign(SECRET, &claims);
        let hour = token(serde_json::json!({"sub": "alice", "iat": now(), "exp": now() + 3600}));
        assert!(v.verify(&hour).is_ok());
        let longer = token(serde_json::json!({"sub": "alice", "iat": now(), "exp": now() + 3601}));
        assert_eq!(v.verify(&longer), Err(TokenError::TooLongLived));
        let no_iat = token(serde_json::json!({"sub": "alice", "exp": now() + 7200}));
        assert_eq!(v.verify(&no_iat), Err(TokenError::TooLongLived));
        let backdated = token(serde_json::json!({"sub": "alice", "iat": now() - 7000, "exp": now() + 600}));
        assert_eq!(
            v.verify(&backdated),
            Err(TokenError::TooLongLived),
            "iat - exp, not exp - now"
        );
        let issued_later = token(serde_json::json!({"sub": "alice", "iat": now() + 600, "exp": now() + 700}));
        assert_eq!(v.verify(&issued_later), Err(TokenError::NotYetValid));
        let year = mint(SECRET, &UserId::parse("alice").unwrap(), 365 * 86_400);
        assert_eq!(
            verifier().verify(&year),
            Err(TokenError::TooLongLived),
            "the default is a day"
        );
    }

    #[test]
    fn a_configured_issuer_and_audience_must_be_named() {
        let v = TokenVerifier::with_rules(
            SECRET,
            &TokenRules {
                issuer: Some("https://id.example".into()),
                audience: Some("natter".into()),
                ..TokenRules::default()
            },
        )
        .unwrap();
        let token = |extra: serde_json::Value| {
            let mut claims = serde_json::json!({"sub": "alice", "exp": now() + 60});
            claims
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            sign(SECRET, &claims)
        };
        let good = token(serde_json::json!({"iss": "https://id.example", "aud": "natter"}));
        assert!(v.verify(&good).is_ok());
        let among = token(serde_json::json!({"iss": "https://id.example", "aud": ["other", "natter"]}));
        assert!(v.verify(&among).is_ok(), "aud may be a list");
        let cases = [
            (serde_json::json!({"aud": "natter"}), TokenError::WrongIssuer),
            (
                serde_json::json!({"iss": "https://evil.example", "aud": "natter"}),
                TokenError::WrongIssuer,
            ),
            (
                serde_json::json!({"iss": "https://id.example"}),
                TokenError::WrongAudience,
            ),
            (
                serde_json::json!({"iss": "https://id.example", "aud": "other"}),
                TokenError::WrongAudience,
            ),
        ];
        for (extra, why) in cases {
            assert_eq!(v.verify(&token(extra.clone())), Err(why), "{extra}");
        }
        let any = token(serde_json::json!({"iss": "whoever", "aud": "whatever"}));
        assert!(
            verifier().verify(&any).is_ok(),
            "without rules, iss and aud are not checked"
        );
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
