//! The one-on-one sequence over real websockets, with natter-local's reordering fault on: frames sent at once
//! reach the server and the receiver in another order, and each message keeps the sender's device and number in
//! its push, in sync and in history, which is what the receiver orders by (infra/local/web/order.js; the browser
//! test shows the receiver's side).

use natter_tests::{Client, start};
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test]
async fn reordered_frames_keep_each_device_numbers_in_push_sync_and_history() {
    let local = start().await;
    let url = local.ws_url.clone();
    let mut alice = Client::connect(&url, "alice").await;
    let mut bob = Client::connect(&url, "bob").await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    local.gateway.reorder_frames(300);

    const N: u64 = 10;
    for seq in 1..=N {
        alice
            .send(json!({"action": "send", "clientMsgId": format!("o{seq}"), "to": "bob", "body": format!("m{seq}"), "seq": seq, "device": "phone"}))
            .await;
    }
    let mut pushed: Vec<Value> = Vec::new();
    while pushed.len() < N as usize {
        pushed.push(bob.wait_for("a message", |v| v["type"] == "message").await);
    }
    local.gateway.reorder_frames(0);
    let seqs: Vec<u64> = pushed.iter().map(|m| m["seq"].as_u64().expect("seq")).collect();
    assert!(pushed.iter().all(|m| m["device"] == "phone"), "{pushed:?}");
    let mut sorted = seqs.clone();
    sorted.sort();
    assert_eq!(sorted, (1..=N).collect::<Vec<_>>(), "each once");
    // By server time, as history and sync list them: the fault must have changed the order somewhere.
    let mut by_time = pushed.clone();
    by_time.sort_by_key(|m| (m["timestamp"].as_i64(), m["messageId"].as_str().map(str::to_owned)));
    let server_order: Vec<u64> = by_time.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert!(
        server_order != sorted || seqs != sorted,
        "ten frames held up to 300 ms each arrived in the order sent, twice: the fault did nothing"
    );

    // History and sync carry the numbers too.
    let h = bob
        .request_until(
            json!({"action": "history", "with": "alice"}),
            "every message in history",
            |r| r["messages"].as_array().is_some_and(|m| m.len() == N as usize),
        )
        .await;
    for m in h["messages"].as_array().unwrap() {
        assert_eq!(m["device"], "phone", "{m}");
        assert_eq!(m["body"], format!("m{}", m["seq"]), "{m}");
    }
    let s = bob.request(json!({"action": "sync"})).await;
    let synced = s["messages"].as_array().unwrap();
    assert!(
        synced.iter().all(|m| m["device"] == "phone" && m["seq"].is_u64()),
        "{s}"
    );
    // A device id outside the alphabet is refused, nothing stored.
    let r = alice
        .request(json!({"action": "send", "clientMsgId": "bad-device", "to": "bob", "body": "x", "seq": 11, "device": "my phone"}))
        .await;
    assert_eq!(r["code"], "bad_request", "{r}");
    local.stop().await;
}
