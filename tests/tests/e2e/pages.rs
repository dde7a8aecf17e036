//! Every reply fits API Gateway's 128 KB message limit, whatever the bodies hold: a body of control characters is
//! six times its raw size once JSON escapes it, so pages are bounded by their serialized size, not by raw bytes.
//! natter-local drops a reply over 128 KB as API Gateway does, so a page that does not fit never arrives here.

use natter_tests::{Client, WAIT, start};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_and_history_pages_of_escaped_bodies_stay_under_128_kb_and_lose_nothing() {
    let local = start().await;
    let mut alice = Client::connect(&local.ws_url, "alice").await;
    Client::connect(&local.ws_url, "bob").await.close().await;
    // 4,000 bytes of U+0001: each is written \u0001 (six bytes) in JSON, 24 KB a message (a client frame stays
    // under API Gateway's 32 KB), twenty of them 480 KB: by raw bytes they fitted one 96 KB page.
    let body: String = "\u{1}".repeat(4_000);
    let mut sent = Vec::new();
    for i in 0..20 {
        let ack = alice.send_message(&format!("big-{i}"), "bob", &body).await;
        sent.push(ack["messageId"].as_str().unwrap().to_owned());
    }
    let mut bob = Client::connect_raw(&local.ws_url, "bob").await;

    let mut got = Vec::new();
    let mut frame = json!({"action": "sync"});
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let page = bob.request(frame.clone()).await;
        assert_eq!(page["type"], "sync", "{}", short(&page));
        assert!(
            page.to_string().len() <= 128 * 1024,
            "a sync page of {} bytes",
            page.to_string().len()
        );
        got.extend(
            page["messages"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|m| m["messageId"].as_str().map(str::to_owned)),
        );
        match page["next"].as_str() {
            Some(next) => frame = json!({"action": "sync", "cursor": next}),
            // The mailbox is an index: the newest messages may show a moment later.
            None if got.len() < sent.len() && tokio::time::Instant::now() < deadline => {
                got.clear();
                frame = json!({"action": "sync"});
            }
            None => break,
        }
    }
    assert_eq!(got, sent, "every message once, oldest first, over pages that each fit");

    // History: indexed asynchronously, so wait for all twenty.
    let mut all = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while all.len() < sent.len() && tokio::time::Instant::now() < deadline {
        all.clear();
        let mut frame = json!({"action": "history", "with": "alice", "limit": 100});
        loop {
            let page = bob.request(frame.clone()).await;
            assert_eq!(page["type"], "history", "{}", short(&page));
            assert!(
                page.to_string().len() <= 128 * 1024,
                "a history page of {} bytes",
                page.to_string().len()
            );
            all.extend(
                page["messages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|m| m["messageId"].as_str().map(str::to_owned)),
            );
            match page["next"].as_str() {
                Some(before) => frame = json!({"action": "history", "with": "alice", "limit": 100, "before": before}),
                None => break,
            }
        }
    }
    all.reverse();
    assert_eq!(all, sent, "history walks back through every message");
    assert_eq!(local.gateway.stats()["undeliveredOver128Kb"], 0);
    local.stop().await;
}

fn short(v: &Value) -> String {
    v.to_string().chars().take(300).collect()
}
