//! The index consumer against the real emulator: index rows and sessions exactly once, newest preview, partial
//! batch failures.

use natter_core::{aws::AwsApp, ids::MessageId, ids::UserId, jobs::IndexJob};
use natter_tests::testkit::{TestStack, invocation, sqs_event};

fn job(from: &str, to: &str, at: i64, text: &str) -> IndexJob {
    IndexJob {
        again: false,
        message_id: MessageId::generate(at),
        from: UserId::parse(from).unwrap(),
        to: UserId::parse(to).unwrap(),
        preview: text.to_owned(),
    }
}

async fn run(stack: &TestStack, app: &AwsApp, bodies: Vec<String>) -> Vec<String> {
    let e = sqs_event(&bodies, &stack.queue_arn("IndexQueue"));
    let r = natter_index::handle(app, invocation(e, 20_000)).await.unwrap();
    r.batch_item_failures.into_iter().map(|f| f.item_identifier).collect()
}

fn json(j: &IndexJob) -> String {
    serde_json::to_string(j).unwrap()
}

async fn session(
    stack: &TestStack,
    user: &str,
) -> std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    stack
        .scan("SessionsTable")
        .await
        .into_iter()
        .find(|s| s["user_id"].as_s().unwrap() == user)
        .unwrap()
}

/// `user`'s unread count with `peer` as a sync lists it (counted when read, from the rows after the read mark).
async fn unread(app: &AwsApp, user: &str, peer: &str) -> u64 {
    let sessions = natter_core::ports::PullStore::sessions(&app.store, &UserId::parse(user).unwrap(), 10)
        .await
        .unwrap();
    let with_peer = sessions
        .into_iter()
        .find(|s| s.peer.as_ref().is_some_and(|p| p.as_str() == peer));
    with_peer.map_or(0, |s| s.unread)
}

#[tokio::test]
async fn a_redelivered_job_does_not_count_unread_twice() {
    let stack = TestStack::new(None).await;
    let app = stack.app("IndexFunction");
    let j = job("alice", "bob", natter_core::now_ms(), "hello");
    assert!(run(&stack, &app, vec![json(&j)]).await.is_empty());
    assert!(run(&stack, &app, vec![json(&j), json(&j)]).await.is_empty());
    assert_eq!(
        stack.scan("MessageIndexTable").await.len(),
        1,
        "one row, the recipient's"
    );
    assert_eq!(unread(&app, "bob", "alice").await, 1);
}

#[tokio::test]
async fn out_of_order_jobs_count_each_message_and_keep_the_newest_preview() {
    let stack = TestStack::new(None).await;
    let app = stack.app("IndexFunction");
    let t = natter_core::now_ms();
    let (first, second, third) = (
        job("alice", "bob", t, "one"),
        job("alice", "bob", t + 5, "two"),
        job("alice", "bob", t + 9, "three"),
    );
    // The newest first, then the older ones in separate batches: each hits the out-of-order path.
    for j in [&third, &first, &second] {
        assert!(run(&stack, &app, vec![json(j)]).await.is_empty());
    }
    let bob = session(&stack, "bob").await;
    assert_eq!(unread(&app, "bob", "alice").await, 3);
    assert_eq!(bob["last_preview"].as_s().unwrap(), "three");
    assert_eq!(bob["last_message_id"].as_s().unwrap(), &third.message_id.to_string());
    let alice = session(&stack, "alice").await;
    assert_eq!(alice["last_preview"].as_s().unwrap(), "three");
    assert_eq!(stack.scan("MessageIndexTable").await.len(), 3);
}

#[tokio::test]
async fn a_bad_record_fails_alone_and_the_rest_of_the_batch_is_indexed() {
    let stack = TestStack::new(None).await;
    let app = stack.app("IndexFunction");
    let good = job("alice", "bob", natter_core::now_ms(), "fine");
    let e = sqs_event(
        &[json(&good), "{\"messageId\": 7}".to_owned(), "not json".to_owned()],
        &stack.queue_arn("IndexQueue"),
    );
    let ids: Vec<String> = e["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["messageId"].as_str().unwrap().to_owned())
        .collect();
    let r = natter_index::handle(&app, invocation(e, 20_000)).await.unwrap();
    let mut failed: Vec<_> = r.batch_item_failures.into_iter().map(|f| f.item_identifier).collect();
    failed.sort();
    let mut expected = vec![ids[1].clone(), ids[2].clone()];
    expected.sort();
    assert_eq!(failed, expected);
    assert_eq!(unread(&app, "bob", "alice").await, 1);
}

#[tokio::test]
async fn a_message_read_before_it_was_indexed_is_indexed_once_and_not_counted_unread() {
    let stack = TestStack::new(None).await;
    let app = stack.app("IndexFunction");
    let t = natter_core::now_ms();
    let (older, read, newer) = (
        job("alice", "bob", t, "seen"),
        job("alice", "bob", t + 5, "read at once"),
        job("alice", "bob", t + 9, "after the read"),
    );
    // bob's client read up to `read` (the `upTo` of its read frame) before any of it was indexed.
    let mark = read.message_id.timestamp();
    let moved = natter_core::ports::IndexStore::read_direct(
        &app.store,
        &UserId::parse("bob").unwrap(),
        &UserId::parse("alice").unwrap(),
        Some(mark),
        t / 1000 + 3_600,
    )
    .await
    .unwrap();
    assert_eq!(moved, None, "no receipt before the store knows the message");
    let hidden = session(&stack, "bob").await;
    assert!(
        hidden.contains_key("expires_at") && !hidden.contains_key("last_ts"),
        "a lapsing mark, not a conversation: {hidden:?}"
    );
    for j in [&read, &older, &newer] {
        assert!(run(&stack, &app, vec![json(j)]).await.is_empty());
    }
    let bob = session(&stack, "bob").await;
    assert_eq!(
        unread(&app, "bob", "alice").await,
        1,
        "only the message after the read counts"
    );
    assert_eq!(bob["last_preview"].as_s().unwrap(), "after the read");
    assert!(!bob.contains_key("expires_at"), "a conversation now, it does not lapse");
    assert_eq!(stack.scan("MessageIndexTable").await.len(), 3);
}

#[tokio::test]
async fn a_burst_into_one_conversation_indexed_by_concurrent_batches_counts_every_message_once() {
    let stack = TestStack::new(None).await;
    let app = stack.app("IndexFunction");
    let t = natter_core::now_ms();
    let jobs: Vec<IndexJob> = (0..30)
        .map(|i| job("alice", "bob", t + i, &format!("burst {i}")))
        .collect();
    // Four invocations at once, as four Lambda instances would take the queue's batches, in scrambled order.
    let mut bodies: Vec<String> = jobs.iter().map(json).collect();
    bodies.reverse();
    bodies.swap(3, 17);
    let batches: Vec<Vec<String>> = bodies.chunks(8).map(<[String]>::to_vec).collect();
    let failed = futures::future::join_all(batches.into_iter().map(|b| run(&stack, &app, b))).await;
    assert!(failed.iter().all(Vec::is_empty), "{failed:?}");
    let bob = session(&stack, "bob").await;
    assert_eq!(unread(&app, "bob", "alice").await, 30);
    assert_eq!(bob["last_preview"].as_s().unwrap(), "burst 29");
    assert_eq!(bob["last_recv_ts"].as_n().unwrap(), &(t + 29).to_string());
    assert_eq!(stack.scan("MessageIndexTable").await.len(), 30);
    // And again, redelivered all at once: nothing changes.
    let again: Vec<String> = jobs.iter().map(json).collect();
    let failed = futures::future::join_all(again.chunks(10).map(|b| run(&stack, &app, b.to_vec()))).await;
    assert!(failed.iter().all(Vec::is_empty));
    assert_eq!(unread(&app, "bob", "alice").await, 30);
}

#[tokio::test]
async fn the_sample_stream_event_indexes_its_message_once_and_skips_what_is_not_a_new_one_on_one_message() {
    let stack = TestStack::new(None).await;
    let app = stack.app("IndexFunction");
    let mut e = natter_tests::testkit::event("index-stream");
    let insert = e["Records"][0].clone();
    // An edit of an older message to bob, and a group message: the filter drops them on AWS; the handler skips
    // them too (indexed, the edit would be a second row and a second unread message).
    let mut edit = insert.clone();
    edit["eventName"] = "MODIFY".into();
    edit["dynamodb"]["SequenceNumber"] = "4421584500000000017450439092".into();
    let older = serde_json::json!({"S": "01M99TAT89R582X38N3F95FS1Y"});
    edit["dynamodb"]["Keys"]["message_id"] = older.clone();
    edit["dynamodb"]["NewImage"]["message_id"] = older;
    let mut group = insert.clone();
    let image = &mut group["dynamodb"]["NewImage"];
    image.as_object_mut().unwrap().remove("recipient");
    image["group_id"] = serde_json::json!({"S": "g-1"});
    image["message_id"] = serde_json::json!({"S": "01M99TAT89R582X38N3F95FS20"});
    group["dynamodb"]["SequenceNumber"] = "4421584500000000017450439093".into();
    e["Records"] = serde_json::json!([insert, edit, group, insert]);
    let r = natter_index::handle(&app, invocation(e, 20_000)).await.unwrap();
    assert!(r.batch_item_failures.is_empty(), "{r:?}");
    let rows = stack.scan("MessageIndexTable").await;
    assert_eq!(
        rows.len(),
        1,
        "one row, the recipient's, for the one-on-one insert delivered twice"
    );
    assert_eq!(unread(&app, "bob", "alice").await, 1);
    assert_eq!(session(&stack, "bob").await["last_preview"].as_s().unwrap(), "Hi Bob!");
}
