//! Attacks over real websockets: forged and malformed tokens at the upgrade, outsiders acting on conversations
//! they do not belong to, a `from` field that tries to speak for someone else. What an attacker sees: a refused
//! upgrade or `forbidden`; what everyone else sees: nothing changed. Tokens and bodies never reach the logs.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use natter_core::auth::sign;
use natter_local::local::Local;
use natter_tests::{
    Client, Logs, options, scan, token,
    tungstenite::{self, client::IntoClientRequest},
};
use serde_json::{Value, json};
use std::time::Duration;

fn now() -> u64 {
    natter_core::now_ms() as u64 / 1000
}

/// A token with a given header and claims, signed with the local secret (the signature does not match a header
/// that names another algorithm, which is the point).
fn with_header(header: &Value, claims: &Value) -> String {
    let good = sign(natter_local::local::dev_secret().as_bytes(), claims);
    let sig = good.rsplit('.').next().unwrap_or_default();
    format!(
        "{}.{}.{sig}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    )
}

async fn upgrade_status(url: &str, token: &str) -> u16 {
    match Client::connect_with(url, "x", token).await {
        Ok(c) => {
            c.close().await;
            101
        }
        Err(status) => status,
    }
}

#[tokio::test]
async fn every_kind_of_bad_token_is_refused_at_the_upgrade_and_no_token_or_body_is_logged() {
    let (opts, logs): (_, Logs) = options();
    let local = Local::start(opts).await.expect("natter-local");
    let secret = natter_local::local::dev_secret();
    let good_claims = json!({"sub": "alice", "exp": now() + 600});
    let cases: Vec<(&str, String)> = vec![
        (
            "alg none",
            format!(
                "{}.{}.",
                B64.encode(r#"{"alg":"none","typ":"JWT"}"#),
                B64.encode(good_claims.to_string())
            ),
        ),
        (
            "another algorithm",
            with_header(&json!({"alg": "HS384", "typ": "JWT"}), &good_claims),
        ),
        (
            "RS256 header",
            with_header(&json!({"alg": "RS256", "typ": "JWT"}), &good_claims),
        ),
        (
            "wrong key",
            sign(b"not-the-secret-not-the-secret-not-the", &good_claims),
        ),
        (
            "expired",
            sign(secret.as_bytes(), &json!({"sub": "alice", "exp": now() - 600})),
        ),
        (
            "not yet valid",
            sign(
                secret.as_bytes(),
                &json!({"sub": "alice", "exp": now() + 600, "nbf": now() + 300}),
            ),
        ),
        ("no sub", sign(secret.as_bytes(), &json!({"exp": now() + 600}))),
        (
            "sub not a user id",
            sign(secret.as_bytes(), &json!({"sub": "../admin", "exp": now() + 600})),
        ),
        ("no exp", sign(secret.as_bytes(), &json!({"sub": "alice"}))),
        (
            "lives a year (the default allows a day)",
            sign(
                secret.as_bytes(),
                &json!({"sub": "alice", "iat": now(), "exp": now() + 365 * 86_400}),
            ),
        ),
        (
            "oversized",
            sign(
                secret.as_bytes(),
                &json!({"sub": "alice", "exp": now() + 600, "pad": "x".repeat(5000)}),
            ),
        ),
        ("garbage", "a.b.c".to_owned()),
    ];
    for (what, bad) in &cases {
        let status = upgrade_status(&local.ws_url, bad).await;
        assert!(status == 401 || status == 403, "{what}: upgrade answered {status}");
    }

    // A valid token in a header instead of the query string: the authorizer's identity source is the query.
    let mut request = format!("{}/", local.ws_url).into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Authorization", format!("Bearer {}", token("alice")).parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(tungstenite::Error::Http(r)) => assert_eq!(r.status().as_u16(), 401),
        Ok(_) => panic!("a token in a header was accepted"),
        Err(e) => panic!("connect: {e}"),
    }

    // Normal traffic with a recognisable body; neither it nor any token appears in any function's output.
    let body = "the body nobody may log 7f3a";
    let mut alice = Client::connect(&local.ws_url, "alice").await;
    let mut bob = Client::connect(&local.ws_url, "bob").await;
    let ack = alice.send_message("sec-1", "bob", body).await;
    let got = bob.wait_for("the message", |v| v["type"] == "message").await;
    assert_eq!(got["body"], body);
    bob.send(json!({"action": "ack", "messageIds": [ack["messageId"]]}))
        .await;
    alice.wait_for("the receipt", |v| v["type"] == "receipt").await;
    tokio::time::sleep(Duration::from_millis(1500)).await; // the history job's logs too
    local.stop().await;

    let lines = logs.lines();
    assert!(
        lines.iter().any(|l| l.contains("[Authorizer")),
        "the authorizer's output is captured: {lines:?}"
    );
    for line in &lines {
        assert!(!line.contains(body), "a body in the logs: {line}");
        assert!(!line.contains(&token("alice")[..40]), "a token in the logs: {line}");
        for (what, bad) in &cases {
            if bad.len() > 40 {
                assert!(
                    !line.contains(&bad[bad.len() - 40..]),
                    "the {what} token in the logs: {line}"
                );
            }
        }
    }
}

/// A deployment that names its identity provider (`TokenIssuer`, `TokenAudience`) and a shorter lifetime
/// (`TokenMaxLifetimeSeconds`): a token from another issuer, for another audience, or living longer is refused at
/// the upgrade; the right one connects.
#[tokio::test]
async fn a_token_must_name_the_deployments_issuer_and_audience_and_live_no_longer_than_it_allows() {
    let (mut opts, _) = options();
    for (name, value) in [
        ("TokenIssuer", "https://id.natter.test"),
        ("TokenAudience", "natter"),
        ("TokenMaxLifetimeSeconds", "3600"),
    ] {
        opts.parameters.insert(name.into(), value.into());
    }
    let local = Local::start(opts).await.expect("natter-local");
    let secret = natter_local::local::dev_secret();
    let token = |claims: Value| sign(secret.as_bytes(), &claims);
    let iss = "https://id.natter.test";
    let cases = [
        (
            "no issuer",
            json!({"sub": "alice", "aud": "natter", "iat": now(), "exp": now() + 600}),
        ),
        (
            "another issuer",
            json!({"sub": "alice", "iss": "https://evil.example", "aud": "natter", "iat": now(), "exp": now() + 600}),
        ),
        (
            "no audience",
            json!({"sub": "alice", "iss": iss, "iat": now(), "exp": now() + 600}),
        ),
        (
            "another audience",
            json!({"sub": "alice", "iss": iss, "aud": "billing", "iat": now(), "exp": now() + 600}),
        ),
        (
            "two hours",
            json!({"sub": "alice", "iss": iss, "aud": "natter", "iat": now(), "exp": now() + 7200}),
        ),
        (
            "two hours without iat",
            json!({"sub": "alice", "iss": iss, "aud": "natter", "exp": now() + 7200}),
        ),
    ];
    for (what, claims) in cases {
        let status = upgrade_status(&local.ws_url, &token(claims)).await;
        assert!(status == 401 || status == 403, "{what}: upgrade answered {status}");
    }
    let good = token(json!({"sub": "alice", "iss": iss, "aud": ["natter"], "iat": now(), "exp": now() + 3600}));
    assert_eq!(
        upgrade_status(&local.ws_url, &good).await,
        101,
        "the deployment's own token connects"
    );
    local.stop().await;
}

async fn create_group(c: &mut Client, members: &[&str]) -> String {
    let r = c
        .request(json!({"action": "group", "op": "create", "name": "team", "members": members}))
        .await;
    r["group"]["id"].as_str().expect("a group id").to_owned()
}

fn code(r: &Value) -> &str {
    r["code"].as_str().unwrap_or_else(|| panic!("not an error: {r}"))
}

async fn members(c: &mut Client, group: &str) -> Vec<String> {
    let r = c
        .request(json!({"action": "group", "op": "members", "group": group}))
        .await;
    let mut m: Vec<String> = r["group"]["members"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .map(|m| m.as_str().map(str::to_owned).unwrap_or_else(|| m["user"].to_string()))
        .collect();
    m.sort();
    m
}

/// Every group action by someone who is not (or no longer) a member, and the owner's actions by a member who is
/// not the owner: `forbidden`, and the group, its messages and its members are as they were.
#[tokio::test]
async fn outsiders_removed_members_and_non_owners_are_forbidden_and_change_nothing() {
    let local = natter_tests::start().await;
    let mut alice = Client::connect(&local.ws_url, "alice").await;
    let mut bob = Client::connect(&local.ws_url, "bob").await;
    let mut carol = Client::connect(&local.ws_url, "carol").await; // never a member
    let mut dave = Client::connect(&local.ws_url, "dave").await; // removed
    natter_tests::befriend(&mut alice, &mut bob).await;
    natter_tests::befriend(&mut alice, &mut dave).await;
    let group = create_group(&mut alice, &["bob", "dave"]).await;
    let first = alice
        .request(json!({"action": "send", "clientMsgId": "g-1", "group": group, "body": "before the removal"}))
        .await;
    assert_eq!(first["seq"], 1, "{first}");
    let removed = alice
        .request(json!({"action": "group", "op": "remove", "group": group, "user": "dave"}))
        .await;
    assert_eq!(removed["type"], "group", "{removed}");
    let second = alice
        .request(json!({"action": "send", "clientMsgId": "g-2", "group": group, "body": "after the removal"}))
        .await;
    assert_eq!(second["seq"], 2);
    let before = members(&mut alice, &group).await;
    assert_eq!(before, ["alice", "bob"]);

    for outsider in [&mut carol, &mut dave] {
        let who = outsider.user.clone();
        let attempts = [
            json!({"action": "send", "clientMsgId": format!("x-{who}"), "group": group, "body": format!("intrusion by {who}")}),
            json!({"action": "ack", "group": group, "upToSeq": 2}),
            json!({"action": "read", "group": group, "upToSeq": 2}),
            json!({"action": "history", "group": group}),
            json!({"action": "group", "op": "members", "group": group}),
            json!({"action": "group", "op": "add", "group": group, "user": who}),
            json!({"action": "group", "op": "remove", "group": group, "user": "bob"}),
            json!({"action": "group", "op": "leave", "group": group}),
        ];
        for frame in attempts {
            let r = outsider.request(frame.clone()).await;
            assert_eq!(code(&r), "forbidden", "{who}: {frame} -> {r}");
            assert!(r.get("messages").is_none() && r.get("group").is_none(), "{r}");
        }
        // Their sync never shows the group's messages after they left (dave saw seq 1 while a member).
        let sync = outsider.request(json!({"action": "sync"})).await;
        let bodies: Vec<&str> = sync["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["body"].as_str())
            .collect();
        assert!(!bodies.contains(&"after the removal"), "{who}: {sync}");
        let groups = outsider.request(json!({"action": "group", "op": "list"})).await;
        assert_eq!(groups["groups"], json!([]), "{who}: {groups}");
    }

    // bob is a member but not the owner.
    for frame in [
        json!({"action": "group", "op": "add", "group": group, "user": "carol"}),
        json!({"action": "group", "op": "remove", "group": group, "user": "alice"}),
    ] {
        let r = bob.request(frame.clone()).await;
        assert_eq!(code(&r), "forbidden", "bob: {frame} -> {r}");
    }

    assert_eq!(members(&mut alice, &group).await, before, "membership unchanged");
    let history = alice.request(json!({"action": "history", "group": group})).await;
    let seqs: Vec<u64> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [2, 1], "no message from an outsider: {history}");
    let stored = scan(&local, "MessagesTable").await;
    assert!(
        stored.iter().all(|i| !i
            .get("body")
            .and_then(|b| b.as_s().ok())
            .is_some_and(|b| b.starts_with("intrusion"))),
        "nothing stored from outsiders"
    );
    // bob's unread count still sees both messages: no outsider's read or ack moved anything of his.
    // `group list` reads an index, which lags the membership by a moment.
    let groups = bob
        .request_until(json!({"action": "group", "op": "list"}), "his group", |g| {
            g["groups"][0].is_object()
        })
        .await;
    assert_eq!(groups["groups"][0]["unread"], 2, "{groups}");
    local.stop().await;
}

/// One-on-one: the sender is the connection's user whatever the frame says, an outsider's ack of someone else's
/// message changes nothing (and tells nothing), and history only ever shows the caller's own conversations.
#[tokio::test]
async fn the_sender_is_always_the_connections_user_and_outsiders_cannot_ack_or_read_others_messages() {
    let local = natter_tests::start().await;
    let mut alice = Client::connect(&local.ws_url, "alice").await;
    let mut bob = Client::connect(&local.ws_url, "bob").await;
    let mut carol = Client::connect(&local.ws_url, "carol").await;

    // `from` is not the sender's to choose.
    let r = carol
        .request(
            json!({"action": "send", "clientMsgId": "spoof-1", "to": "bob", "from": "alice", "body": "I am alice"}),
        )
        .await;
    assert_eq!(r["type"], "ack", "{r}");
    let got = bob.wait_for("the message", |v| v["type"] == "message").await;
    assert_eq!(got["from"], "carol", "{got}");

    let ack = alice.send_message("private-1", "bob", "for bob only").await;
    bob.wait_for("alice's message", |v| v["body"] == "for bob only").await;
    // carol acks and reads a message that is not hers: ok (no oracle), but no receipt and no status change.
    let r = carol
        .request(json!({"action": "ack", "messageIds": [ack["messageId"]]}))
        .await;
    assert_eq!(r["type"], "ok", "{r}");
    let r = carol.request(json!({"action": "read", "with": "alice"})).await;
    assert_eq!(r["type"], "ok", "{r}");
    assert!(
        alice
            .try_wait_for(|v| v["type"] == "receipt", Duration::from_millis(800))
            .await
            .is_none(),
        "alice got a receipt for something bob never acked"
    );
    // carol's history with alice and with bob holds nothing of alice and bob's conversation.
    for peer in ["alice", "bob"] {
        let h = carol.request(json!({"action": "history", "with": peer})).await;
        let bodies: Vec<&str> = h["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["body"].as_str())
            .collect();
        assert!(!bodies.contains(&"for bob only"), "{peer}: {h}");
    }
    // bob still has it to acknowledge: carol's ack did not take it out of his mailbox (which is an index, and
    // lags the message by a moment: a mailbox that never shows it fails here).
    let id = ack["messageId"].clone();
    let sync = bob
        .request_until(json!({"action": "sync"}), "alice's message in his mailbox", |s| {
            s["messages"]
                .as_array()
                .is_some_and(|m| m.iter().any(|m| m["messageId"] == id))
        })
        .await;
    assert_eq!(sync["type"], "sync");
    local.stop().await;
}
