//! Push notifications over real websockets, through natter-local's SNS (the emulator's platform applications;
//! `GET /_natter/notifications` shows what a device would have shown): a user who is away gets one notification
//! for a burst, none while online, none once the device is unregistered, none from a sender it blocked; a token
//! the platform reports dead is forgotten.

use natter_tests::{Client, http, scan, start};
use serde_json::{Value, json};
use std::time::Duration;

async fn notifications(base: &str) -> Vec<Value> {
    let (status, body) = http(base, "GET", "/_natter/notifications", &[], "").await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("a JSON list")
}

fn to<'a>(all: &'a [Value], user: &str) -> Vec<&'a Value> {
    all.iter().filter(|n| n["user"] == user).collect()
}

/// Connects `user` and registers `tokens` (fcm); the caller closes the client to make the user away.
async fn with_devices(url: &str, user: &str, tokens: &[&str]) -> Client {
    let mut c = Client::connect(url, user).await;
    for t in tokens {
        let r = c
            .request(json!({"action": "device", "op": "register", "platform": "fcm", "token": t}))
            .await;
        assert_eq!(r["type"], "ok", "{r}");
    }
    c
}

#[tokio::test]
async fn an_away_user_is_notified_once_per_burst_and_never_when_it_should_not_be() {
    let local = start().await;
    let url = local.ws_url.clone();
    let base = url.replacen("ws://", "http://", 1);
    let mut alice = Client::connect(&url, "alice").await;

    // bob: away, one device. carol: online, one device. dave: unregistered again. erin: blocked alice.
    // frank: two devices, one of them dead.
    let bob = with_devices(&url, "bob", &["bob-phone"]).await;
    let r = Client::connect(&url, "bob")
        .await
        .request(
            json!({"action": "device", "op": "register", "platform": "webpush", "token": "https://push.example/x"}),
        )
        .await;
    assert_eq!(r["code"], "bad_request", "no Web Push platform locally: {r}");
    bob.close().await;
    let _carol = with_devices(&url, "carol", &["carol-phone"]).await;
    let mut dave = with_devices(&url, "dave", &["dave-phone"]).await;
    let r = dave
        .request(json!({"action": "device", "op": "unregister", "token": "dave-phone"}))
        .await;
    assert_eq!(r["type"], "ok", "{r}");
    dave.close().await;
    let mut erin = with_devices(&url, "erin", &["erin-phone"]).await;
    let r = erin
        .request(json!({"action": "friends", "op": "block", "user": "alice"}))
        .await;
    assert_eq!(r["type"], "friends", "{r}");
    erin.close().await;
    let frank = with_devices(&url, "frank", &["frank-old", "frank-new"]).await;
    frank.close().await;
    let (status, _) = http(
        &base,
        "POST",
        "/_natter/notifications/disable",
        &[("content-type", "application/json")],
        r#"{"token":"frank-old"}"#,
    )
    .await;
    assert_eq!(status, 204);
    // Let the closes settle (their presence events), then send.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    for (i, who) in ["bob", "bob", "bob", "carol", "dave", "erin", "frank"]
        .iter()
        .enumerate()
    {
        alice.send_message(&format!("n{i}"), who, "a secret body").await;
    }
    // The queue holds each notification 2 s locally; give the consumer time to run them all.
    let mut all = Vec::new();
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        all = notifications(&base).await;
        if to(&all, "bob").len() == 1 && to(&all, "frank").len() == 1 {
            break;
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Nothing more comes after a while (the rest of the burst waits for the minute's follow-up).
    assert!(to(&all, "bob").len() == 1, "{all:?}");
    let all = notifications(&base).await;
    let bobs = to(&all, "bob");
    assert_eq!(bobs.len(), 1, "one notification for the burst of three: {all:?}");
    let n = bobs[0];
    assert_eq!(
        (&n["platform"], &n["token"], &n["title"], &n["conversation"]),
        (&json!("fcm"), &json!("bob-phone"), &json!("alice"), &json!("alice"))
    );
    assert!(
        n["text"].as_str().unwrap().ends_with("new message") || n["text"].as_str().unwrap().ends_with("new messages")
    );
    assert!(!format!("{all:?}").contains("secret body"), "never the body");
    assert!(to(&all, "carol").is_empty(), "online: {all:?}");
    assert!(to(&all, "dave").is_empty(), "unregistered: {all:?}");
    assert!(to(&all, "erin").is_empty(), "blocked the sender: {all:?}");
    let franks = to(&all, "frank");
    assert_eq!(franks.len(), 1, "{all:?}");
    assert_eq!(franks[0]["token"], "frank-new");
    let devices = scan(&local, "DevicesTable").await;
    let tokens: Vec<String> = devices
        .iter()
        .filter_map(|d| d.get("token").and_then(|t| t.as_s().ok()).cloned())
        .collect();
    assert!(tokens.contains(&"frank-new".to_owned()), "{tokens:?}");
    assert!(
        !tokens.contains(&"frank-old".to_owned()),
        "the dead token is forgotten: {tokens:?}"
    );
    assert!(!tokens.contains(&"dave-phone".to_owned()), "{tokens:?}");
    local.stop().await;
}

/// A group that fits one fan-out chunk notifies its away members about the group: one notification for a burst,
/// titled with the group's name, never the body, nothing to members online.
#[tokio::test]
async fn an_away_member_of_a_small_group_is_notified_once_about_the_group() {
    let local = start().await;
    let url = local.ws_url.clone();
    let base = url.replacen("ws://", "http://", 1);
    let mut alice = Client::connect(&url, "alice").await;
    let mut bob = with_devices(&url, "bob", &["bob-tablet"]).await;
    let mut carol = with_devices(&url, "carol", &["carol-tablet"]).await;
    natter_tests::befriend(&mut alice, &mut bob).await;
    natter_tests::befriend(&mut alice, &mut carol).await;
    let created = alice
        .request(json!({"action": "group", "op": "create", "name": "book club", "members": ["bob", "carol"]}))
        .await;
    let group = created["group"]["id"].as_str().expect("a group").to_owned();
    bob.close().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    for i in 0..3 {
        let r = alice
            .request(json!({"action": "send", "clientMsgId": format!("g{i}"), "group": group, "body": "a secret body"}))
            .await;
        assert_eq!(r["type"], "ack", "{r}");
    }
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if !to(&notifications(&base).await, "bob").is_empty() {
            break;
        }
    }
    // Nothing more comes after a while (the rest of the burst waits for the minute's follow-up).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all = notifications(&base).await;
    let bobs = to(&all, "bob");
    assert_eq!(bobs.len(), 1, "one notification for the burst: {all:?}");
    assert_eq!(
        (&bobs[0]["title"], &bobs[0]["conversation"]),
        (&json!("book club"), &json!(group))
    );
    assert!(to(&all, "carol").is_empty(), "online: {all:?}");
    assert!(to(&all, "alice").is_empty(), "the sender: {all:?}");
    assert!(!format!("{all:?}").contains("secret body"), "never the body");
    local.stop().await;
}

/// Invocations of the consumer of notifications (and presence notices: the test makes none while it counts).
fn notice_invocations(local: &natter_local::local::Local) -> f64 {
    local.gateway.stats()["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["function"].as_str().unwrap_or_default().contains("PresenceNotify"))
        .map(|s| s["invocations"].as_f64().unwrap_or(0.0))
        .sum()
}

/// Most users have no device (web clients). The first notification job for such a user finds none and marks its
/// presence, and sends to it stop queueing notification jobs (before: one job per message to an away web user,
/// each a queue message, an invocation and a read). Registering a device unmarks it: notified again.
#[tokio::test]
async fn an_away_user_without_devices_costs_no_notification_jobs_until_it_registers_one() {
    let local = start().await;
    let url = local.ws_url.clone();
    let base = url.replacen("ws://", "http://", 1);
    let mut alice = Client::connect(&url, "alice").await;
    Client::connect(&url, "gina").await.close().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    alice.send_message("w0", "gina", "hello").await;
    let marked = |items: &[std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>]| {
        items.iter().any(|p| {
            p.get("user_id").and_then(|u| u.as_s().ok()).map(String::as_str) == Some("gina")
                && p.get("devices").and_then(|d| d.as_bool().ok()) == Some(&false)
        })
    };
    let mut seen = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if marked(&scan(&local, "PresenceTable").await) {
            seen = true;
            break;
        }
    }
    assert!(seen, "the notification job found no device and marked gina's presence");
    // Sends read presence eventually: past DynamoDB's read lag (a second at most under natter-local's
    // `--read-lag`, as CI runs it) they see the mark. Until then a send may queue one job more.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let before = notice_invocations(&local);
    for i in 1..4 {
        alice.send_message(&format!("w{i}"), "gina", "hello").await;
    }
    // The queue holds a notification 2 s locally: a job queued now would have run.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        notice_invocations(&local),
        before,
        "no notification job for a user known to have no device"
    );

    let gina = with_devices(&url, "gina", &["gina-phone"]).await;
    gina.close().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    alice.send_message("w4", "gina", "hello").await;
    let mut ginas = Vec::new();
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        ginas = to(&notifications(&base).await, "gina").into_iter().cloned().collect();
        if !ginas.is_empty() {
            break;
        }
    }
    assert_eq!(ginas.len(), 1, "notified once it has a device: {ginas:?}");
    assert_eq!(ginas[0]["token"], "gina-phone");
    local.stop().await;
}
