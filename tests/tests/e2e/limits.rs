//! Limits a client meets over real websockets: the per-user rate limit over all its connections (`rate_limited`,
//! the connection stays open and is served again), at most ten connections per user (429 at the upgrade), the
//! stage's route throttling (API Gateway's `Too Many Requests`), and the size bounds of every field.

use natter_local::local::Local;
use natter_tests::{Client, befriend, options, scan};
use serde_json::{Value, json};
use std::time::Duration;

/// Sends `n` frames that count against the rate limit (`friends` lists) as fast as the socket takes them and sorts
/// the direct replies by kind.
async fn burst(c: &mut Client, tag: &str, n: usize) -> (usize, usize, Vec<Value>) {
    for i in 0..n {
        c.send(counted_frame(&format!("{tag}-{i}"))).await;
    }
    replies(c, tag, n).await
}

/// A cheap frame that counts against the rate limit (a heartbeat or typing notice does not), answered `friends`.
fn counted_frame(request_id: &str) -> Value {
    json!({"action": "friends", "op": "list", "requestId": request_id})
}

/// The direct replies to `n` frames whose requestIds start with `tag`: how many were served, how many refused
/// `rate_limited`, and any other reply.
async fn replies(c: &mut Client, tag: &str, n: usize) -> (usize, usize, Vec<Value>) {
    let (mut served, mut limited, mut other) = (0, 0, Vec::new());
    for _ in 0..n {
        let Some(r) = c
            .try_wait_for(
                |v| v["requestId"].as_str().is_some_and(|id| id.starts_with(tag)) || v["message"].is_string(),
                Duration::from_secs(30),
            )
            .await
        else {
            break;
        };
        match (r["type"].as_str(), r["code"].as_str()) {
            (Some("pong" | "ok" | "friends"), _) => served += 1,
            (Some("error"), Some("rate_limited")) => limited += 1,
            _ => other.push(r),
        }
    }
    (served, limited, other)
}

#[tokio::test]
async fn a_connection_over_its_rate_is_answered_rate_limited_and_served_again_later() {
    let local = natter_tests::start().await;
    let mut alice = Client::connect_raw(&local.ws_url, "alice").await;
    let mut bob = Client::connect_raw(&local.ws_url, "bob").await;

    let (served, limited, other) = burst(&mut alice, "a", 250).await;
    assert!(other.is_empty(), "{other:?}");
    assert_eq!(served + limited, 250, "every frame got a reply");
    // 100 frames per 2 s window; a burst that straddles a window boundary gets at most two windows' worth.
    assert!((100..=200).contains(&served), "served {served}");
    assert!(limited >= 50, "limited {limited}");
    let r = alice
        .try_wait_for(|v| v["code"] == "rate_limited", Duration::from_millis(1))
        .await;
    assert!(r.is_none(), "one reply per frame");

    // Another connection is not affected, and alice's connection stays open.
    let pong = bob.request(json!({"action": "heartbeat"})).await;
    assert_eq!(pong["type"], "pong", "{pong}");
    assert!(alice.closed.is_none());

    // A rate-limited send is not processed: nothing stored, and it works once the window has passed.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (served, limited, _) = burst(&mut alice, "b", 100).await;
    assert_eq!((served, limited), (100, 0), "a fresh window serves the full allowance");
    let r = alice
        .request(json!({"action": "send", "clientMsgId": "over-1", "to": "bob", "body": "over the limit"}))
        .await;
    if r["code"] == "rate_limited" {
        assert_eq!(r["clientMsgId"], "over-1", "{r}");
        let stored = scan(&local, "MessagesTable").await;
        assert!(
            stored
                .iter()
                .all(|i| i.get("body").and_then(|b| b.as_s().ok()).map(String::as_str) != Some("over the limit"))
        );
        tokio::time::sleep(Duration::from_millis(2100)).await;
        let ack = alice.send_message("over-1", "bob", "over the limit").await;
        assert_eq!(ack["type"], "ack");
    } else {
        // The 101st frame fell into the next window.
        assert_eq!(r["type"], "ack", "{r}");
    }
    let got = bob.messages_within(Duration::from_secs(2)).await;
    assert_eq!(got.len(), 1, "{got:?}");
    local.stop().await;
}

/// A heartbeat is not counted against the rate limit (counting is a write; a heartbeat's own work is one eventual
/// read): a client that heartbeats in a burst is answered every time and has its whole allowance left for real
/// frames, and those are limited as before.
#[tokio::test]
async fn heartbeats_are_never_limited_and_leave_the_allowance_to_other_frames() {
    let local = natter_tests::start().await;
    let mut alice = Client::connect_raw(&local.ws_url, "alice").await;
    for i in 0..250 {
        alice
            .send(json!({"action": "heartbeat", "requestId": format!("h-{i}")}))
            .await;
    }
    let (served, limited, other) = replies(&mut alice, "h-", 250).await;
    assert!(other.is_empty(), "{other:?}");
    assert_eq!((served, limited), (250, 0), "every heartbeat answered pong");
    let (served, limited, other) = burst(&mut alice, "f", 250).await;
    assert!(other.is_empty(), "{other:?}");
    assert!(
        served >= 100,
        "the heartbeats took none of the allowance: served {served}"
    );
    assert!(limited >= 50, "other frames are limited as before: limited {limited}");
    local.stop().await;
}

/// Five connections of one user share one allowance (it used to be one each: 300 frames in a burst, none
/// limited); an eleventh connection is refused with 429 while other users connect, and closing one makes room.
#[tokio::test]
async fn a_user_has_one_rate_over_all_its_connections_and_at_most_ten_of_them() {
    let local = natter_tests::start().await;
    let mut devices = Vec::new();
    for _ in 0..5 {
        devices.push(Client::connect_raw(&local.ws_url, "alice").await);
    }
    for (k, c) in devices.iter_mut().enumerate() {
        for i in 0..60 {
            c.send(counted_frame(&format!("d{k}-{i}"))).await;
        }
    }
    let (mut served, mut limited) = (0, 0);
    for (k, c) in devices.iter_mut().enumerate() {
        let tag = format!("d{k}-");
        for _ in 0..60 {
            let r = c
                .wait_for("a reply to each frame", |v| {
                    v["requestId"].as_str().is_some_and(|id| id.starts_with(&tag))
                })
                .await;
            match (r["type"].as_str(), r["code"].as_str()) {
                (Some("friends"), _) => served += 1,
                (Some("error"), Some("rate_limited")) => limited += 1,
                _ => panic!("{r}"),
            }
        }
    }
    // 100 frames per 2 s window for the user; a burst that straddles a window boundary gets two windows' worth.
    assert!(
        served <= 200 && limited >= 100,
        "served {served}, limited {limited} of 300"
    );
    assert!(
        devices.iter().all(|c| c.closed.is_none()),
        "limited connections stay open"
    );

    for _ in 5..10 {
        devices.push(Client::connect_raw(&local.ws_url, "alice").await);
    }
    let token = natter_tests::token("alice");
    let refused = Client::connect_with(&local.ws_url, "alice", &token).await.err();
    assert_eq!(refused, Some(429), "an eleventh connection");
    let mut bob = Client::connect_raw(&local.ws_url, "bob").await;
    assert_eq!(bob.request(json!({"action": "heartbeat"})).await["type"], "pong");
    // The refused upgrade left nothing behind: alice is pushed on her ten connections only.
    let ack = bob.send_message("to-alice", "alice", "hi all").await;
    assert_eq!(ack["type"], "ack");
    for c in devices.iter_mut() {
        c.wait_for("the message on every device", |v| v["type"] == "message")
            .await;
    }

    devices.pop().unwrap().close().await;
    let mut again = None;
    for _ in 0..50 {
        match Client::connect_with(&local.ws_url, "alice", &token).await {
            Ok(c) => {
                again = Some(c);
                break;
            }
            Err(status) => {
                assert_eq!(status, 429);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    assert!(again.is_some(), "a closed connection makes room");
    local.stop().await;
}

#[tokio::test]
async fn the_stages_route_throttling_answers_too_many_requests_before_any_function_runs() {
    let (mut opts, _logs) = options();
    opts.parameters.insert("ThrottlingRateLimit".into(), "5".into());
    opts.parameters.insert("ThrottlingBurstLimit".into(), "10".into());
    let local = Local::start(opts).await.expect("natter-local");
    let mut alice = Client::connect_raw(&local.ws_url, "alice").await;
    let before = local.function("DirectoryFunction").stats().invocations;

    for i in 0..40 {
        alice
            .send(json!({"action": "heartbeat", "requestId": format!("t-{i}")}))
            .await;
    }
    let (mut pongs, mut throttled) = (0, 0);
    while let Some(r) = alice.try_wait_for(|_| true, Duration::from_millis(1500)).await {
        if r["type"] == "pong" {
            pongs += 1;
        } else if r["message"] == "Too Many Requests" {
            throttled += 1;
        } else {
            panic!("unexpected {r}");
        }
    }
    assert_eq!(pongs + throttled, 40);
    // The burst of 10, plus what 5/s refills while the frames arrive.
    assert!((10..=15).contains(&pongs), "pongs {pongs}");
    let ran = local.function("DirectoryFunction").stats().invocations - before;
    assert_eq!(ran as usize, pongs, "throttled frames never reach a function");

    tokio::time::sleep(Duration::from_millis(1000)).await;
    let pong = alice.request(json!({"action": "heartbeat"})).await;
    assert_eq!(pong["type"], "pong", "served again once tokens refill");
    local.stop().await;
}

#[tokio::test]
async fn every_field_is_bounded_and_an_oversized_one_is_refused_without_writing() {
    let local = natter_tests::start().await;
    let mut alice = Client::connect_raw(&local.ws_url, "alice").await;
    let _bob = Client::connect_raw(&local.ws_url, "bob").await;
    let ids: Vec<String> = (0..101).map(|_| ulid::Ulid::generate().to_string()).collect();
    let cases = [
        (
            json!({"action": "send", "clientMsgId": "big", "to": "bob", "body": "é".repeat(8193)}),
            "too_large",
        ),
        (
            json!({"action": "send", "clientMsgId": "x".repeat(65), "to": "bob", "body": "hi"}),
            "bad_request",
        ),
        (
            json!({"action": "send", "clientMsgId": "empty", "to": "bob", "body": ""}),
            "bad_request",
        ),
        (
            json!({"action": "send", "clientMsgId": "to", "to": "b".repeat(200), "body": "hi"}),
            "bad_request",
        ),
        (json!({"action": "ack", "messageIds": ids}), "bad_request"),
        (json!({"action": "history", "with": "bob", "limit": 101}), "bad_request"),
        (
            json!({"action": "history", "with": "bob", "before": "c".repeat(9000)}),
            "bad_request",
        ),
        (json!({"action": "sync", "cursor": "not a cursor"}), "bad_request"),
        (
            json!({"action": "group", "op": "create", "name": "n".repeat(101), "members": ["bob"]}),
            "bad_request",
        ),
        (
            json!({"action": "group", "op": "create", "name": "big", "members": (0..1001).map(|i| format!("u{i}")).collect::<Vec<_>>()}),
            "bad_request",
        ),
        (
            json!({"action": "friends", "op": "add", "user": "u".repeat(200)}),
            "bad_request",
        ),
    ];
    for (frame, expected) in cases {
        let shown: String = frame.to_string().chars().take(80).collect();
        let r = alice.request(frame).await;
        assert_eq!(r["code"], expected, "{shown}: {r}");
    }
    assert!(scan(&local, "MessagesTable").await.is_empty(), "nothing stored");
    assert!(scan(&local, "GroupsTable").await.is_empty(), "no group created");
    local.stop().await;
}

/// How many message ids `delivered` receipts name, counting until `n` or until none comes for 3 s.
async fn delivered_receipts(c: &mut Client, n: usize) -> usize {
    let mut got = 0;
    while got < n {
        let Some(r) = c
            .try_wait_for(
                |v| v["type"] == "receipt" && v["status"] == "delivered",
                Duration::from_secs(3),
            )
            .await
        else {
            break;
        };
        got += r["messageIds"].as_array().map_or(0, Vec::len);
    }
    got
}

/// An ack that delivers pays for itself: what acks can deliver is bounded by what others sent, each send counted
/// against its sender. A user back from offline acks 252 messages one frame each, in one burst (more than two
/// windows' allowance), and none is refused; the same acks again deliver nothing, so they are counted, and past
/// the limit are refused without re-sending the senders a receipt.
#[tokio::test]
async fn acks_that_deliver_are_never_refused_and_repeated_acks_are_limited_without_receipts() {
    let local = natter_tests::start().await;
    let mut bob = Client::connect(&local.ws_url, "bob").await;
    let mut senders = Vec::new();
    for name in ["alice", "carol", "dave"] {
        let mut c = Client::connect(&local.ws_url, name).await;
        befriend(&mut c, &mut bob).await;
        senders.push(c);
    }
    // 84 from each: every sender stays within its own allowance.
    let mut ids = Vec::new();
    for c in senders.iter_mut() {
        for i in 0..84 {
            let ack = c.send_message(&format!("m{i}"), "bob", "hi").await;
            ids.push(ack["messageId"].as_str().unwrap().to_owned());
        }
    }
    let ack_all = |tag: &'static str| {
        ids.iter()
            .enumerate()
            .map(move |(i, id)| json!({"action": "ack", "messageIds": [id], "requestId": format!("{tag}-{i}")}))
            .collect::<Vec<_>>()
    };
    for frame in ack_all("first") {
        bob.send(frame).await;
    }
    let (served, limited, other) = replies(&mut bob, "first", ids.len()).await;
    assert!(other.is_empty(), "{other:?}");
    assert_eq!((served, limited), (ids.len(), 0), "every ack that delivered was served");
    for c in senders.iter_mut() {
        assert_eq!(
            delivered_receipts(c, 84).await,
            84,
            "{}: a receipt for each message",
            c.user
        );
    }

    for frame in ack_all("again") {
        bob.send(frame).await;
    }
    let (served, limited, other) = replies(&mut bob, "again", ids.len()).await;
    assert!(other.is_empty(), "{other:?}");
    // 100 frames per 2 s window; a burst that straddles a window boundary gets at most two windows' worth.
    assert!(
        served <= 200 && served + limited == ids.len(),
        "served {served}, limited {limited}"
    );
    let mut again = 0;
    for c in senders.iter_mut() {
        again += delivered_receipts(c, usize::MAX).await;
    }
    assert_eq!(
        again, served,
        "a receipt again for each repeated ack served, none for one refused"
    );
    assert!(bob.closed.is_none());
    local.stop().await;
}
