//! Retention: a message past it disappears. The user stops seeing it at once (reads filter what DynamoDB has not
//! deleted yet; AWS deletes expired items lazily, within days), and the table's TTL removes the item itself, which
//! MiniStack does within about a minute, as DynamoDB would eventually. moto never expires items: there the test
//! stops after what the user sees.

use natter_core::{
    frames::{Conversation, SendFrame, ServerFrame, Target},
    ids::{Body, ClientMsgId},
    now_ms,
    ports::Directory,
    testing::{caller, user},
};
use natter_local::emulator::Kind;
use natter_tests::testkit::TestStack;
use std::time::Duration;

#[tokio::test]
async fn a_message_past_its_retention_is_no_longer_seen_and_its_item_expires() {
    let stack = TestStack::new(None).await;
    // Retention is whole days on AWS (RETENTION_DAYS); here two seconds.
    let app = stack.app_with("SendFunction", |s| s.retention_secs = 2);
    app.store.register(&user("bob"), now_ms()).await.unwrap();
    let frame = SendFrame {
        client_msg_id: ClientMsgId::parse("r1").unwrap(),
        target: Target::To(user("bob")),
        body: Body::parse("gone in two seconds").unwrap(),
        seq: None,
        device: None,
        attachments: Vec::new(),
    };
    let ack = app
        .send(&caller("alice", "a1"), &frame, now_ms(), now_ms() + 5000)
        .await
        .unwrap();
    let sync = |at| {
        let app = &app;
        async move {
            match app.sync(&user("bob"), None, at).await.unwrap() {
                ServerFrame::Sync(s) => s.messages.len(),
                other => panic!("{other:?}"),
            }
        }
    };
    assert_eq!(sync(now_ms()).await, 1, "within retention bob gets it");
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert_eq!(
        sync(now_ms()).await,
        0,
        "past retention bob does not, though the item is still stored"
    );
    let history = app
        .history(&user("alice"), &Conversation::With(user("bob")), None, 50, now_ms())
        .await
        .unwrap();
    assert!(matches!(history, ServerFrame::History(h) if h.messages.is_empty()));

    if Kind::from_env() == Ok(Kind::Moto) {
        eprintln!("moto never deletes expired items; the table's TTL is checked on MiniStack");
        return;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(150);
    loop {
        let left = stack.scan("MessagesTable").await;
        if left.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "message {} still stored 150 s after its TTL",
            ack.message_id
        );
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}
