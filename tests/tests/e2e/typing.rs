//! `typing` over real websockets: forwarded to a friend, a peer in conversation and a group's members, never to a
//! stranger; one `start` a second; every `stop`; and no DynamoDB write on its path (natter-local's metrics, as
//! the functions report them on AWS).

use natter_tests::{Client, befriend, start};
use serde_json::{Value, json};
use std::time::Duration;

fn is_typing(v: &Value) -> bool {
    v["type"] == "typing"
}

async fn no_typing(c: &mut Client, why: &str) {
    let got = c.try_wait_for(is_typing, Duration::from_millis(600)).await;
    assert!(got.is_none(), "{why}: {got:?}");
}

#[tokio::test]
async fn typing_reaches_friends_peers_and_members_once_a_second_and_writes_nothing() {
    let local = start().await;
    let url = local.ws_url.clone();
    let mut alice = Client::connect(&url, "alice").await;
    let mut bob = Client::connect(&url, "bob").await;
    let mut carol = Client::connect(&url, "carol").await;
    befriend(&mut alice, &mut bob).await;
    // Typing reads presence eventually consistent (it is sent every second while one types; a strong read would
    // cost twice): a connection opened within DynamoDB's lag may miss the first notice. Let the lag pass.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let ok = alice.request(json!({"action": "typing", "to": "bob"})).await;
    assert_eq!(ok["type"], "ok", "{ok}");
    let t = bob.wait_for("alice typing", is_typing).await;
    assert_eq!(
        t,
        json!({"type": "typing", "from": "alice", "to": "bob", "state": "start"})
    );
    alice.send(json!({"action": "typing", "to": "bob"})).await;
    no_typing(&mut bob, "a second start within the second").await;
    alice
        .send(json!({"action": "typing", "to": "bob", "state": "stop"}))
        .await;
    assert_eq!(bob.wait_for("the stop", is_typing).await["state"], "stop");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    alice.send(json!({"action": "typing", "to": "bob"})).await;
    assert_eq!(
        bob.wait_for("a start a second later", is_typing).await["state"],
        "start"
    );

    // A stranger: dropped silently, answered like any other.
    let r = carol.request(json!({"action": "typing", "to": "bob"})).await;
    assert_eq!(r["type"], "ok");
    no_typing(&mut bob, "carol is a stranger to bob").await;
    // Once they exchanged a message it goes (either way round).
    bob.send_message("hi-carol", "carol", "hello carol").await;
    carol.wait_for("bob's message", |v| v["type"] == "message").await;
    let mut delivered = None;
    for _ in 0..20 {
        // The conversation is indexed a moment after the message.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        carol.send(json!({"action": "typing", "to": "bob"})).await;
        delivered = bob.try_wait_for(is_typing, Duration::from_millis(500)).await;
        if delivered.is_some() {
            break;
        }
    }
    assert_eq!(delivered.expect("carol's typing once they talked")["from"], "carol");

    // A group: its other members.
    let g = alice
        .request(json!({"action": "group", "op": "create", "name": "team", "members": ["bob"]}))
        .await["group"]["id"]
        .clone();
    alice.send(json!({"action": "typing", "group": g})).await;
    let t = bob
        .wait_for("typing in the group", |v| is_typing(v) && v["group"] == g)
        .await;
    assert_eq!((&t["from"], &t["state"]), (&json!("alice"), &json!("start")));
    no_typing(&mut carol, "not a member").await;
    let r = carol.request(json!({"action": "typing", "group": g})).await;
    assert_eq!(r["type"], "ok");
    no_typing(&mut bob, "from a non-member").await;

    // No write on the path: not the rate limit's counter, not anything else.
    let stats = local.gateway.stats();
    let typing: Vec<&Value> = stats["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "typing")
        .collect();
    assert!(!typing.is_empty(), "{stats}");
    for s in typing {
        assert_eq!(s["model_write_units"].as_f64(), Some(0.0), "{s}");
        for (op, _) in s["calls"].as_object().unwrap() {
            assert!(
                ![
                    "PutItem",
                    "UpdateItem",
                    "DeleteItem",
                    "BatchWriteItem",
                    "TransactWriteItems"
                ]
                .iter()
                .any(|w| op.ends_with(w)),
                "typing called {op}"
            );
        }
    }
    // A malformed one is refused (and, like every malformed frame, counted against the rate limit).
    let bad = alice
        .request(json!({"action": "typing", "to": "bob", "state": "dancing"}))
        .await;
    assert_eq!(bad["code"], "bad_request");
    local.stop().await;
}
