//! The authorizer with events shaped as API Gateway sends them: valid tokens allowed with the user in the
//! context; every kind of bad token denied; a missing token unauthorized (401).

use natter_authorizer::handle;
use natter_core::{
    auth::{TokenVerifier, mint, sign},
    ids::UserId,
    lambda::{ApiGatewayCustomAuthorizerResponse, IamPolicyEffect},
};
use natter_tests::testkit::{TEST_SECRET, event, invocation};
use serde_json::json;

fn now() -> u64 {
    natter_core::now_ms() as u64 / 1000
}

async fn authorize(token: Option<&str>) -> Result<ApiGatewayCustomAuthorizerResponse, String> {
    let mut e = event("authorizer-connect");
    match token {
        Some(t) => {
            e["queryStringParameters"]["token"] = t.into();
            e["multiValueQueryStringParameters"]["token"] = json!([t]);
        }
        None => {
            e["queryStringParameters"] = json!({});
            e["multiValueQueryStringParameters"] = json!({});
        }
    }
    let verifier = TokenVerifier::new(TEST_SECRET.as_bytes()).unwrap();
    handle(&verifier, invocation(e, 3000)).await.map_err(|e| e.to_string())
}

fn effect(r: &ApiGatewayCustomAuthorizerResponse) -> IamPolicyEffect {
    r.policy_document.statement[0].effect.clone()
}

#[tokio::test]
async fn a_valid_token_is_allowed_and_names_the_user() {
    let token = mint(TEST_SECRET.as_bytes(), &UserId::parse("alice").unwrap(), 300);
    let r = authorize(Some(&token)).await.unwrap();
    assert_eq!(effect(&r), IamPolicyEffect::Allow);
    assert_eq!(r.principal_id.as_deref(), Some("alice"));
    assert_eq!(r.context["userId"], "alice");
    assert_eq!(
        r.policy_document.statement[0].resource,
        vec!["arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/dev/$connect".to_owned()]
    );
}

#[tokio::test]
async fn a_missing_token_is_unauthorized() {
    assert_eq!(authorize(None).await.unwrap_err(), "Unauthorized");
    assert_eq!(authorize(Some("")).await.unwrap_err(), "Unauthorized");
}

#[tokio::test]
async fn every_kind_of_bad_token_is_denied() {
    let secret = TEST_SECRET.as_bytes();
    let cases = [
        ("malformed", "not-a-jwt".to_owned()),
        (
            "badly signed",
            sign(
                b"some-other-secret-some-other-secret!",
                &json!({"sub": "alice", "exp": now() + 60}),
            ),
        ),
        ("expired", sign(secret, &json!({"sub": "alice", "exp": now() - 120}))),
        ("without exp", sign(secret, &json!({"sub": "alice"}))),
        (
            "sub outside the pattern",
            sign(secret, &json!({"sub": "a/b", "exp": now() + 60})),
        ),
        (
            "alg none",
            format!(
                "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.",
                "eyJzdWIiOiJhbGljZSIsImV4cCI6OTk5OTk5OTk5OX0"
            ),
        ),
        ("oversized", "x".repeat(5000)),
    ];
    for (what, token) in cases {
        let r = authorize(Some(&token)).await.unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(effect(&r), IamPolicyEffect::Deny, "{what}");
        assert!(
            r.context.get("userId").is_none(),
            "{what}: no user leaks into the context"
        );
    }
}
