//! `read` of a one-on-one conversation: the mark moves only over messages the reader received from that peer, a
//! read of anything else is silent, and a read that overtakes the asynchronous indexing still ends read.

use natter_local::template::plain;
use natter_tests::{Client, start};
use serde_json::{Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// `c`'s conversation with `peer` as its first sync page lists it, if it does.
async fn conversation(c: &mut Client, peer: &str) -> Option<Value> {
    let page = c.request(json!({"action": "sync"})).await;
    page["conversations"]
        .as_array()?
        .iter()
        .find(|x| x["with"] == peer)
        .cloned()
}

fn is_read_receipt(v: &Value) -> bool {
    v["type"] == "receipt" && v["status"] == "read"
}

#[tokio::test]
async fn a_read_of_a_conversation_the_reader_does_not_have_reaches_no_one_and_creates_nothing() {
    let local = start().await;
    let mut alice = Client::connect(&local.ws_url, "alice").await;
    let mut bob = Client::connect(&local.ws_url, "bob").await;
    let mut mallory = Client::connect(&local.ws_url, "mallory").await;

    // A stranger "reads" a conversation it never had, with a real user and with a name nobody holds.
    for peer in ["bob", "nobody-at-all"] {
        let r = mallory
            .request(json!({"action": "read", "with": peer, "upTo": now_ms()}))
            .await;
        assert_eq!(r["type"], "ok", "{r}");
        assert_eq!(
            conversation(&mut mallory, peer).await,
            None,
            "no conversation with {peer}"
        );
    }
    let r = mallory.request(json!({"action": "read", "with": "bob"})).await;
    assert_eq!(r["type"], "ok", "{r}");

    // Alice wrote to bob but bob never wrote to her: she received nothing from him, so her read moves nothing.
    alice.send_message("r-1", "bob", "hello bob").await;
    let sent = bob.wait_for("alice's message", |v| v["type"] == "message").await;
    let r = alice
        .request(json!({"action": "read", "with": "bob", "upTo": now_ms()}))
        .await;
    assert_eq!(r["type"], "ok", "{r}");
    assert!(
        bob.try_wait_for(is_read_receipt, Duration::from_secs(1))
            .await
            .is_none(),
        "nobody who did not receive a message from bob can tell him it was read"
    );

    // Bob did receive it: his read reaches alice, up to that message and no further.
    let t = sent["timestamp"].as_i64().unwrap();
    bob.request(json!({"action": "read", "with": "alice", "upTo": t + 60_000}))
        .await;
    let receipt = alice.wait_for("bob's read receipt", is_read_receipt).await;
    assert_eq!(
        (receipt["by"].as_str(), receipt["upTo"].as_i64()),
        (Some("bob"), Some(t))
    );
    local.stop().await;
}

#[tokio::test]
async fn a_read_that_overtakes_indexing_is_not_counted_and_its_receipt_follows() {
    let local = start().await;
    let faults = local.faults().expect("an emulator");
    let mut alice = Client::connect(&local.ws_url, "alice").await;
    let mut bob = Client::connect(&local.ws_url, "bob").await;

    // Indexing (history rows, then the session) cannot write: the message is delivered, not yet indexed.
    faults.throttle_tables(&[plain(&local.stack.names.refs["MessageIndexTable"])]);
    alice.send_message("first", "bob", "the first message ever").await;
    let m = bob.wait_for("alice's message", |v| v["type"] == "message").await;
    let t = m["timestamp"].as_i64().unwrap();
    bob.request(json!({"action": "ack", "messageIds": [m["messageId"]]}))
        .await;
    let r = bob.request(json!({"action": "read", "with": "alice", "upTo": t})).await;
    assert_eq!(r["type"], "ok", "{r}");
    faults.throttle_tables(&[]);

    let receipt = alice.wait_for("the read receipt, once indexed", is_read_receipt).await;
    assert_eq!(
        (receipt["by"].as_str(), receipt["upTo"].as_i64()),
        (Some("bob"), Some(t))
    );
    let mut seen = None;
    for _ in 0..50 {
        seen = conversation(&mut bob, "alice").await;
        if seen.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let seen = seen.expect("the conversation is indexed");
    assert_eq!(seen["unread"], 0, "read before it was indexed: {seen}");
    assert_eq!(seen["last"]["messageId"], m["messageId"]);
    local.stop().await;
}
