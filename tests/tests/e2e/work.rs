//! Work per admitted frame is bounded: what one frame costs in DynamoDB calls and capacity, read from the metrics
//! the functions write (natter-local's `/_natter/stats`), as they are on AWS.

use natter_local::local::Local;
use natter_tests::Client;
use serde_json::{Value, json};
use std::time::Duration;

/// The sums of the metrics of every function whose name contains `function`: calls by operation, modelled
/// read units per invocation.
fn metrics(local: &Local, function: &str) -> (Value, f64) {
    let stats = local.gateway.stats();
    let (mut calls, mut read_units, mut invocations) = (serde_json::Map::new(), 0.0, 0.0);
    for s in stats["metrics"].as_array().unwrap() {
        if !s["function"].as_str().unwrap_or_default().contains(function) {
            continue;
        }
        read_units += s["model_read_units"].as_f64().unwrap_or(0.0);
        invocations += s["invocations"].as_f64().unwrap_or(0.0);
        for (op, n) in s["calls"].as_object().unwrap() {
            let sum = calls.get(op).and_then(Value::as_u64).unwrap_or(0) + n.as_u64().unwrap();
            calls.insert(op.clone(), sum.into());
        }
    }
    (Value::Object(calls), read_units / invocations.max(1.0))
}

fn count(calls: &Value, op: &str) -> u64 {
    calls[op].as_u64().unwrap_or(0)
}

/// An ack of 100 ids that are not the acker's (made up, or someone else's) used to cost 100 conditional writes,
/// each billed although its condition failed. Now the ids are read in two calls and nothing is written.
#[tokio::test]
async fn an_ack_of_ids_that_are_not_yours_writes_nothing() {
    let local = natter_tests::start().await;
    let mut alice = Client::connect(&local.ws_url, "alice").await;
    let mut bob = Client::connect(&local.ws_url, "bob").await;
    let ack = alice.send_message("w-1", "bob", "for bob").await;
    bob.wait_for("the message", |v| v["type"] == "message").await;
    let (before, _) = metrics(&local, "Ack");
    // Ids of the right shape that name nothing, and alice's message to bob acked by alice herself.
    let mut ids: Vec<String> = (0..99)
        .map(|i| natter_core::ids::MessageId::generate(natter_core::now_ms() - i).to_string())
        .collect();
    ids.push(ack["messageId"].as_str().unwrap().to_owned());
    let r = alice.request(json!({"action": "ack", "messageIds": ids})).await;
    assert_eq!(r["type"], "ok", "{r}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (after, _) = metrics(&local, "Ack");
    let writes = count(&after, "DynamoDB.UpdateItem") - count(&before, "DynamoDB.UpdateItem");
    let reads = count(&after, "DynamoDB.BatchGetItem") - count(&before, "DynamoDB.BatchGetItem");
    assert_eq!(
        writes, 1,
        "the rate limit's counter and no write for ids that are not alice's: {after}"
    );
    // Her mailbox rows for the ids (none), then the messages without a row (which may be in the old Inbox
    // index): two reads, whatever the number of ids.
    assert_eq!(reads, 2, "two reads for all of them: {after}");

    // bob's own ack still lands: alice gets the delivered receipt, with one write.
    bob.request(json!({"action": "ack", "messageIds": [ack["messageId"]]}))
        .await;
    let receipt = alice.wait_for("the receipt", |v| v["type"] == "receipt").await;
    assert_eq!(receipt["status"], "delivered", "{receipt}");
    local.stop().await;
}

/// A member of ten busy groups: its first sync page returns at most 100 messages, and used to fetch the bodies of
/// every group's next 100 entries (here 300) to return them. Now it fetches only the bodies the page returns.
#[tokio::test]
async fn a_sync_page_fetches_only_the_bodies_it_returns() {
    let (mut opts, _logs) = natter_tests::options();
    opts.parameters.insert("FrameRateLimit".into(), "0".into());
    let local = Local::start(opts).await.expect("natter-local");
    let mut alice = Client::connect_raw(&local.ws_url, "alice").await;
    let mut bob = Client::connect_raw(&local.ws_url, "bob").await;
    natter_tests::befriend(&mut alice, &mut bob).await;
    bob.close().await;
    for g in 0..10 {
        let r = alice
            .request(json!({"action": "group", "op": "create", "name": format!("busy {g}"), "members": ["bob"]}))
            .await;
        let group = r["group"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
        for i in 0..30 {
            let body = format!("{g}-{i} {}", "x".repeat(200));
            let ack = alice
                .request(json!({"action": "send", "clientMsgId": format!("b{g}-{i}"), "group": group, "body": body}))
                .await;
            assert_eq!(ack["type"], "ack", "{ack}");
        }
    }
    let mut bob = Client::connect_raw(&local.ws_url, "bob").await;
    let page = bob
        .request_until(json!({"action": "sync"}), "all ten groups", |p| {
            p["conversations"].as_array().is_some_and(|c| c.len() == 10)
        })
        .await;
    let returned = page["messages"].as_array().unwrap().len();
    assert_eq!(returned, 100, "a full page");
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Bob's syncs are the only ones: read units per sync. Each body is one read unit (under 4 KB, read strongly);
    // the rest of a first page (sessions, groups, the index rows) is a few dozen.
    let (_, used) = metrics(&local, "Sync");
    assert!(
        used < 200.0,
        "{used} read units for a page of {returned}: bodies beyond the page were fetched"
    );
    local.stop().await;
}
