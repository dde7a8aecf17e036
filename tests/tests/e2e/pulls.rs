//! sync, history, read receipts and multi-device over real websockets: a user back from offline gets everything it
//! missed once, with unread counts; history walks back page by page; a message from one device shows on the others.

use natter_tests::{Client, WAIT, start};
use serde_json::{Value, json};
use std::{collections::HashSet, time::Duration};

async fn sync_all(c: &mut Client) -> (Vec<Value>, Value) {
    let first = c.request(json!({"action": "sync"})).await;
    let conversations = first["conversations"].clone();
    let mut messages = first["messages"].as_array().unwrap().clone();
    let mut next = first["next"].clone();
    while let Some(cursor) = next.as_str().map(str::to_owned) {
        let page = c.request(json!({"action": "sync", "cursor": cursor})).await;
        messages.extend(page["messages"].as_array().unwrap().iter().cloned());
        next = page["next"].clone();
    }
    (messages, conversations)
}

fn unread(conversations: &Value, key: &str, id: &str) -> Option<u64> {
    conversations.as_array()?.iter().find(|c| c[key] == id)?["unread"].as_u64()
}

#[tokio::test]
async fn back_from_offline_a_user_syncs_150_messages_once_and_acks_them_away() {
    let local = start().await;
    let url = local.ws_url.clone();
    let mut alice = Client::connect(&url, "alice").await;
    let mut bob = Client::connect(&url, "bob").await;
    natter_tests::befriend(&mut alice, &mut bob).await;
    let g = alice
        .request(json!({"action": "group", "op": "create", "name": "Club", "members": ["bob"]}))
        .await;
    let g = g["group"]["id"].as_str().unwrap().to_owned();
    bob.close().await;

    let mut direct = Vec::new();
    for i in 0..120 {
        direct.push(
            alice
                .send_message(&format!("d{i}"), "bob", &format!("direct {i}"))
                .await["messageId"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    for i in 0..30 {
        let r = alice
            .request(
                json!({"action": "send", "clientMsgId": format!("g{i}"), "group": g, "body": format!("group {i}")}),
            )
            .await;
        assert_eq!(r["seq"], i + 1);
    }

    let mut bob = Client::connect(&url, "bob").await;
    // History is indexed asynchronously: the unread count reaches 120 within seconds.
    let deadline = std::time::Instant::now() + WAIT;
    let (mut messages, mut conversations) = sync_all(&mut bob).await;
    while unread(&conversations, "with", "alice") != Some(120) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(300)).await;
        (messages, conversations) = sync_all(&mut bob).await;
    }
    assert_eq!(unread(&conversations, "with", "alice"), Some(120));
    assert_eq!(unread(&conversations, "group", &g), Some(30));
    assert_eq!(messages.len(), 150);
    let ids: Vec<&str> = messages.iter().map(|m| m["messageId"].as_str().unwrap()).collect();
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 150);
    let got_direct: Vec<&str> = ids
        .iter()
        .copied()
        .filter(|id| direct.iter().any(|d| d == id))
        .collect();
    assert_eq!(
        got_direct,
        direct.iter().map(String::as_str).collect::<Vec<_>>(),
        "oldest first"
    );

    for chunk in direct.chunks(100) {
        assert_eq!(
            bob.request(json!({"action": "ack", "messageIds": chunk})).await["type"],
            "ok"
        );
    }
    assert_eq!(
        bob.request(json!({"action": "ack", "group": g, "upToSeq": 30})).await["type"],
        "ok"
    );
    // The mailbox is an index: an ack takes a message out of it a moment later.
    let deadline = std::time::Instant::now() + WAIT;
    let (mut after, _) = sync_all(&mut bob).await;
    while !after.is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        (after, _) = sync_all(&mut bob).await;
    }
    assert!(after.is_empty(), "{after:?}");
    // Alice's devices got the delivered receipts.
    let receipts = alice
        .try_wait_for(|v| v["type"] == "receipt" && v["status"] == "delivered", WAIT)
        .await;
    assert!(receipts.is_some());
    local.stop().await;
}

#[tokio::test]
async fn history_walks_back_reads_send_receipts_and_other_devices_see_what_one_sends() {
    let local = start().await;
    let url = local.ws_url.clone();
    let (mut alice, mut alice_tablet) = (
        Client::connect(&url, "alice").await,
        Client::connect(&url, "alice").await,
    );
    let mut bob = Client::connect(&url, "bob").await;
    let mut sent = Vec::new();
    for i in 0..120 {
        sent.push(
            alice.send_message(&format!("h{i}"), "bob", &format!("h{i}")).await["messageId"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    // Multi-device: the tablet saw every message the phone sent.
    let on_tablet = alice_tablet.messages_within(Duration::from_secs(2)).await;
    assert_eq!(on_tablet.len(), 120);

    let mut walked = Vec::new();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        walked.clear();
        let mut before: Option<String> = None;
        loop {
            let mut f = json!({"action": "history", "with": "bob", "limit": 50});
            if let Some(b) = &before {
                f["before"] = b.clone().into();
            }
            let page = alice.request(f).await;
            walked.extend(
                page["messages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| m["messageId"].as_str().unwrap().to_owned()),
            );
            match page["next"].as_str() {
                Some(n) => before = Some(n.to_owned()),
                None => break,
            }
        }
        if walked.len() == 120 || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let mut expected = sent.clone();
    expected.reverse();
    assert_eq!(walked, expected, "newest first, every message once");

    let stranger = {
        let mut mallory = Client::connect(&url, "mallory").await;
        mallory.request(json!({"action": "history", "with": "alice"})).await
    };
    assert_eq!(
        stranger["messages"],
        json!([]),
        "a stranger sees none of alice and bob's conversation"
    );

    assert_eq!(
        bob.request(json!({"action": "read", "with": "alice"})).await["type"],
        "ok"
    );
    for c in [&mut alice, &mut alice_tablet] {
        let r = c
            .wait_for("a read receipt", |v| v["type"] == "receipt" && v["status"] == "read")
            .await;
        assert_eq!(r["by"], "bob");
    }
    let newest = alice
        .request(json!({"action": "history", "with": "bob", "limit": 1}))
        .await;
    assert_eq!(newest["messages"][0]["status"], "read");
    let (_, conversations) = sync_all(&mut bob).await;
    assert_eq!(unread(&conversations, "with", "alice"), Some(0));
    assert_eq!(
        bob.request(json!({"action": "history", "with": "alice", "limit": 0}))
            .await["code"],
        "bad_request"
    );
    let pong = bob.request(json!({"action": "heartbeat"})).await;
    assert_eq!(pong["type"], "pong");
    local.stop().await;
}
