//! The backend breaks on purpose (natter-local's emulator proxy): an outage, one table down, DynamoDB throttling,
//! a job that dead-letters and is redriven. What a user sees: `unavailable` and nothing half-stored, then a retry
//! with the same clientMsgId that lands exactly once; nothing lost, nothing counted twice.

use natter_local::{local::Local, proxy::Faults, template::plain};
use natter_tests::{Client, scan, start};
use serde_json::{Value, json};
use std::{sync::Arc, time::Duration};

fn faults(local: &Local) -> Arc<Faults> {
    local.faults().expect("natter-local runs on an emulator here")
}

fn table(local: &Local, logical_id: &str) -> String {
    plain(&local.stack.names.refs[logical_id])
}

async fn send(c: &mut Client, cmid: &str, to: &str, body: &str) -> Value {
    c.request(json!({"action": "send", "clientMsgId": cmid, "to": to, "body": body}))
        .await
}

/// Message items whose body is `body`.
async fn stored(local: &Local, body: &str) -> usize {
    scan(local, "MessagesTable")
        .await
        .iter()
        .filter(|i| i.get("body").and_then(|b| b.as_s().ok()).map(String::as_str) == Some(body))
        .count()
}

#[tokio::test]
async fn during_an_outage_sends_are_unavailable_store_nothing_and_a_retry_afterwards_lands_once() {
    let local = start().await;
    let mut alice = Client::connect(&local.ws_url, "alice").await;
    let mut bob = Client::connect(&local.ws_url, "bob").await;
    let f = faults(&local);

    f.outage(true);
    let r = send(&mut alice, "out-1", "bob", "sent during the outage").await;
    assert_eq!(
        (r["type"].as_str(), r["code"].as_str()),
        (Some("error"), Some("unavailable")),
        "{r}"
    );
    assert_eq!(r["clientMsgId"], "out-1");
    assert!(f.injected() > 0);
    f.outage(false);

    assert_eq!(stored(&local, "sent during the outage").await, 0, "nothing half-stored");
    assert!(bob.messages_within(Duration::from_millis(500)).await.is_empty());

    let first = alice.send_message("out-1", "bob", "sent during the outage").await;
    let again = alice.send_message("out-1", "bob", "sent during the outage").await;
    assert_eq!(first["messageId"], again["messageId"]);
    let got = bob.messages_within(Duration::from_secs(2)).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["messageId"], first["messageId"]);
    assert_eq!(stored(&local, "sent during the outage").await, 1);
    local.stop().await;
}

#[tokio::test]
async fn with_the_messages_table_down_a_claimed_send_is_released_and_its_retry_lands_once() {
    let local = start().await;
    let mut alice = Client::connect(&local.ws_url, "alice").await;
    let mut bob = Client::connect(&local.ws_url, "bob").await;
    let f = faults(&local);

    // The claim and the lookup succeed; storing the message does not.
    f.throttle_tables(&[table(&local, "MessagesTable")]);
    let r = send(&mut alice, "half-1", "bob", "half way").await;
    assert_eq!(r["code"], "unavailable", "{r}");
    f.throttle_tables(&[]);
    assert!(bob.messages_within(Duration::from_millis(500)).await.is_empty());
    assert_eq!(stored(&local, "half way").await, 0);

    // The released claim lets the retry resume at once, with the claim's message id.
    let ack = alice.send_message("half-1", "bob", "half way").await;
    let got = bob.messages_within(Duration::from_secs(2)).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["messageId"], ack["messageId"]);
    assert_eq!(stored(&local, "half way").await, 1);
    local.stop().await;
}

#[tokio::test]
async fn throttling_is_retried_by_the_sdk_and_persistent_throttling_is_unavailable() {
    let local = start().await;
    let mut alice = Client::connect(&local.ws_url, "alice").await;
    let mut bob = Client::connect(&local.ws_url, "bob").await;
    let f = faults(&local);

    // Two throttled calls: the SDK's standard retries (3 attempts, backoff) absorb them.
    f.throttle_next(2);
    let ack = alice.send_message("thr-1", "bob", "throttled twice").await;
    assert_eq!(f.injected(), 2);
    let got = bob.messages_within(Duration::from_secs(2)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["messageId"], ack["messageId"]);

    // Throttled for good: the client is told to retry later, and nothing is stored.
    f.set(natter_local::proxy::FaultState {
        throttle_all: true,
        ..Default::default()
    });
    let r = send(&mut alice, "thr-2", "bob", "throttled for good").await;
    assert_eq!(r["code"], "unavailable", "{r}");
    f.set(Default::default());
    assert_eq!(stored(&local, "throttled for good").await, 0);
    alice.send_message("thr-2", "bob", "throttled for good").await;
    assert_eq!(bob.messages_within(Duration::from_secs(2)).await.len(), 1);
    local.stop().await;
}

/// The messages waiting in a queue (visible or in flight).
async fn depth(sqs: &aws_sdk_sqs::Client, url: &str) -> u64 {
    let a = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("queue attributes");
    a.attributes()
        .into_iter()
        .flatten()
        .filter_map(|(_, v)| v.parse::<u64>().ok())
        .sum()
}

async fn unread_from(c: &mut Client, peer: &str) -> Option<u64> {
    let page = c.request(json!({"action": "sync"})).await;
    page["conversations"]
        .as_array()?
        .iter()
        .find(|x| x["with"] == peer)
        .and_then(|x| x["unread"].as_u64())
}

#[tokio::test]
async fn a_history_job_dead_lettered_while_sessions_were_down_is_redriven_and_counted_once() {
    let local = start().await;
    let sdk = natter_local::emulator::sdk_for(local.emulator.as_deref().unwrap()).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let dlq = local.stack.queue_url("IndexDeadLetterQueue").unwrap();
    let mut alice = Client::connect(&local.ws_url, "alice").await;
    let mut bob = Client::connect(&local.ws_url, "bob").await;
    let f = faults(&local);

    // Sessions down: sending works (it does not touch Sessions), indexing does not.
    f.throttle_tables(&[table(&local, "SessionsTable")]);
    let ack = alice.send_message("dl-1", "bob", "indexed late").await;
    bob.wait_for("the message", |v| v["type"] == "message").await;
    // 5 receives with a 1 s visibility timeout, then the dead-letter queue.
    let mut waited = 0;
    while depth(&sqs, &dlq).await == 0 {
        assert!(waited < 60, "the job never reached the dead-letter queue");
        tokio::time::sleep(Duration::from_secs(1)).await;
        waited += 1;
    }
    // The attempt that saw the job's last receive may still be retrying (the SDK backs off on throttling, up to
    // its 5 s operation timeout) while SQS already moved the job on: lifting the fault now would let that attempt
    // index it. Wait the attempt out first.
    tokio::time::sleep(Duration::from_secs(6)).await;
    f.throttle_tables(&[]);
    assert_eq!(unread_from(&mut bob, "alice").await, None, "not indexed yet");

    let done = local.redriver.redrive("IndexQueue").await.expect("redrive");
    assert_eq!(
        (done.from.as_str(), done.to.as_str(), done.moved),
        ("IndexDeadLetterQueue", "IndexQueue", 1)
    );
    let mut unread = None;
    for _ in 0..50 {
        unread = unread_from(&mut bob, "alice").await;
        if unread.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(unread, Some(1), "indexed once after the redrive");
    let page = bob.request(json!({"action": "history", "with": "alice"})).await;
    let ids: Vec<&Value> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["messageId"])
        .collect();
    assert_eq!(ids, [&ack["messageId"]]);
    assert_eq!(depth(&sqs, &dlq).await, 0);
    assert_eq!(local.redriver.redrive("IndexDeadLetterQueue").await.unwrap().moved, 0);
    assert!(local.redriver.redrive("UsersTable").await.is_err());
    local.stop().await;
}

/// The message and its place in the recipient's mailbox are two writes: the mailbox's can fail with the message
/// stored. The retry finds the message stored and must still put it in the mailbox (bob is offline, so only
/// `sync` brings it to him); once bob acknowledged it, a later retry must not put it back.
#[tokio::test]
async fn a_send_whose_mailbox_write_failed_reaches_the_offline_recipient_once_after_the_retry() {
    let local = start().await;
    let mut alice = Client::connect(&local.ws_url, "alice").await;
    Client::connect(&local.ws_url, "bob").await.close().await;
    let f = faults(&local);

    f.throttle_tables(&[table(&local, "MailboxTable")]);
    let r = send(&mut alice, "box-1", "bob", "half boxed").await;
    assert_eq!(r["code"], "unavailable", "{r}");
    f.throttle_tables(&[]);
    assert_eq!(
        stored(&local, "half boxed").await,
        1,
        "the message was stored, its mailbox entry was not"
    );

    let ack = alice.send_message("box-1", "bob", "half boxed").await;
    let mut bob = Client::connect(&local.ws_url, "bob").await;
    let synced = |s: &Value| -> Vec<Value> { s["messages"].as_array().cloned().unwrap_or_default() };
    let s = bob.request(json!({"action": "sync"})).await;
    let got = synced(&s);
    assert_eq!(got.len(), 1, "{s}");
    assert_eq!(got[0]["messageId"], ack["messageId"]);

    let r = bob
        .request(json!({"action": "ack", "messageIds": [ack["messageId"]]}))
        .await;
    assert_eq!(r["type"], "ok", "{r}");
    let again = alice.send_message("box-1", "bob", "half boxed").await;
    assert_eq!(again["messageId"], ack["messageId"]);
    let s = bob.request(json!({"action": "sync"})).await;
    assert!(
        synced(&s).is_empty(),
        "acknowledged, and not back after another retry: {s}"
    );
    local.stop().await;
}

/// The same half-failure with bob online: his device must get the push from the retry (the first attempt failed
/// before pushing), exactly once however many retries follow, not only at his next sync.
#[tokio::test]
async fn a_send_whose_mailbox_write_failed_is_pushed_to_the_online_recipient_by_the_retry_once() {
    let local = start().await;
    let mut alice = Client::connect(&local.ws_url, "alice").await;
    let mut bob = Client::connect(&local.ws_url, "bob").await;
    let f = faults(&local);

    f.throttle_tables(&[table(&local, "MailboxTable")]);
    let r = send(&mut alice, "box-2", "bob", "pushed late").await;
    assert_eq!(r["code"], "unavailable", "{r}");
    f.throttle_tables(&[]);
    assert!(
        bob.messages_within(Duration::from_millis(300)).await.is_empty(),
        "nothing pushed by the failed attempt"
    );
    let ack = alice.send_message("box-2", "bob", "pushed late").await;
    let again = alice.send_message("box-2", "bob", "pushed late").await;
    assert_eq!(again["messageId"], ack["messageId"]);
    let pushed: Vec<Value> = bob
        .messages_within(Duration::from_secs(2))
        .await
        .into_iter()
        .filter(|m| m["type"] == "message")
        .collect();
    assert_eq!(pushed.len(), 1, "{pushed:?}");
    assert_eq!(pushed[0]["messageId"], ack["messageId"]);
    local.stop().await;
}

/// A group send's history row is its last write and its done mark. When that write fails the send is
/// `unavailable` with the message already pushed (a small group is pushed by its send); the retry must put the
/// row (or the message is missing from history for good) and gets the same sequence; later retries find the row
/// and push nothing.
#[tokio::test]
async fn a_group_send_whose_history_write_failed_is_in_history_once_after_the_retry() {
    let local = start().await;
    let mut ann = Client::connect(&local.ws_url, "ann").await;
    let mut ben = Client::connect(&local.ws_url, "ben").await;
    natter_tests::befriend(&mut ann, &mut ben).await;
    let r = ann
        .request(json!({"action": "group", "op": "create", "name": "Hikers", "members": ["ben"]}))
        .await;
    let g = r["group"]["id"].as_str().expect("a group").to_owned();
    let group_send = json!({"action": "send", "clientMsgId": "h-1", "group": g, "body": "summit at noon"});
    let f = faults(&local);

    f.throttle_tables(&[table(&local, "GroupHistoryTable")]);
    let r = ann.request(group_send.clone()).await;
    assert_eq!(r["code"], "unavailable", "{r}");
    f.throttle_tables(&[]);

    let ack = ann.request(group_send.clone()).await;
    assert_eq!((&ack["type"], &ack["seq"]), (&json!("ack"), &json!(1)), "{ack}");
    let pushed = ben.wait_for("the group message", |v| v["type"] == "message").await;
    assert_eq!(pushed["messageId"], ack["messageId"]);
    let h = ben.request(json!({"action": "history", "group": g})).await;
    let ids: Vec<&Value> = h["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["messageId"])
        .collect();
    assert_eq!(ids, [&ack["messageId"]], "in history once: {h}");

    // The first attempt pushed and so did the resumed one: a repeat, dropped by its id. Once both are through, a
    // further retry finds the history row and pushes nothing.
    ben.messages_within(Duration::from_millis(1500)).await;
    let again = ann.request(group_send).await;
    assert_eq!((&again["messageId"], &again["seq"]), (&ack["messageId"], &json!(1)));
    assert!(
        ben.messages_within(Duration::from_millis(1000)).await.is_empty(),
        "a retry of a finished send pushes nothing"
    );
    local.stop().await;
}
