//! natter-local's own endpoints (`/_natter/token`, `/_natter/stats`, `/_natter/faults`, `/_natter/redrive/...`)
//! attacked the way a web page would: through DNS rebinding (the attacker's name re-pointed at 127.0.0.1, so the
//! browser sends it as `Host`) and with cross-site form posts (no JSON content type). What the attacker sees: 403
//! or 415, and no token; what the developer sees: the endpoints still work from this machine.

use natter_local::local::Local;
use natter_tests::{Client, http, options, start};
use serde_json::{Value, json};

const REBOUND: &str = "rebound.attacker.example";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_page_cannot_mint_tokens_read_stats_or_break_the_stack() {
    let local = start().await;
    let base = local.ws_url.replacen("ws://", "http://", 1);

    let (status, body) = http(&base, "GET", "/_natter/token?user=alice", &[], "").await;
    assert_eq!(status, 200, "the developer's own page gets a token: {body}");
    assert!(body.contains("\"token\""), "{body}");

    for path in ["/_natter/token?user=alice", "/_natter/stats", "/_natter/faults"] {
        let (status, body) = http(&base, "GET", path, &[("Host", REBOUND)], "").await;
        assert_eq!(status, 403, "{path} answered a rebound Host: {body}");
        assert!(!body.contains("\"token\""), "{body}");
    }
    let (status, _) = http(
        &base,
        "POST",
        "/_natter/faults",
        &[("Host", REBOUND), ("Content-Type", "application/json")],
        r#"{"outage":true}"#,
    )
    .await;
    assert_eq!(status, 403, "a rebound page set faults");

    // A cross-site form can post only form or text bodies; none of them reaches a control endpoint.
    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        let (status, _) = http(
            &base,
            "POST",
            "/_natter/faults",
            &[("Content-Type", content_type)],
            r#"{"outage":true}"#,
        )
        .await;
        assert_eq!(status, 415, "faults set by a {content_type} post");
        let (status, body) = http(
            &base,
            "POST",
            "/_natter/redrive/IndexQueue",
            &[("Content-Type", content_type)],
            "",
        )
        .await;
        assert_eq!(status, 415, "redrive by a {content_type} post: {body}");
    }
    let (_, faults) = http(&base, "GET", "/_natter/faults", &[], "").await;
    let faults: Value = serde_json::from_str(&faults).expect("faults as JSON");
    assert_eq!(faults["faults"]["outage"], json!(false), "{faults}");

    // Nothing broke: users still chat, and the developer's JSON posts work.
    let mut alice = Client::connect(&local.ws_url, "alice").await;
    let reply = alice.request(json!({"action": "friends", "op": "list"})).await;
    assert!(reply["friends"].is_array(), "{reply}");
    let (status, body) = http(
        &base,
        "POST",
        "/_natter/redrive/IndexQueue",
        &[("Content-Type", "application/json")],
        "{}",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    alice.close().await;
    local.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_is_minted_with_a_secret_natter_local_did_not_make() {
    let (mut o, _) = options();
    // NATTER_JWT_SECRET may be a real deployment's secret: minting with it over HTTP would hand out real tokens.
    o.jwt_secret = "a-deployment-secret-that-is-not-natter-locals".into();
    let local = Local::start(o).await.expect("natter-local");
    let base = local.ws_url.replacen("ws://", "http://", 1);
    let (status, body) = http(&base, "GET", "/_natter/token?user=alice", &[], "").await;
    assert_eq!(status, 404, "{body}");
    assert!(!body.contains("\"token\""), "{body}");
    assert!(
        body.contains("natter-local token"),
        "the refusal says what to do instead: {body}"
    );
    local.stop().await;
}
