//! `ack` against the real emulator: delivered marks, the mailbox, receipts to every sender device.

use natter_core::{
    aws::AwsApp,
    frames::{SendFrame, Target},
    ids::{Body, ClientMsgId, ConnectionId, UserId},
    lambda::ApiGatewayWebsocketProxyRequest,
    now_ms,
    service::Caller,
};
use natter_tests::testkit::{ConnectionsStub, TestStack, invocation, reply_frame, ws_event};
use serde_json::{Value, json};

fn user(u: &str) -> UserId {
    UserId::parse(u).unwrap()
}

async fn setup() -> (TestStack, ConnectionsStub, AwsApp, String) {
    let stub = ConnectionsStub::start().await;
    let stack = TestStack::new(Some(&stub.base)).await;
    let app = stack.app("AckFunction");
    for (u, c) in [("alice", "a1"), ("alice", "a2"), ("bob", "b1")] {
        app.connect(&user(u), &ConnectionId::parse(c).unwrap(), now_ms())
            .await
            .unwrap();
    }
    let sender = stack.app("SendFunction");
    let frame = SendFrame {
        client_msg_id: ClientMsgId::parse("cm-1").unwrap(),
        target: Target::To(user("bob")),
        body: Body::parse("hi").unwrap(),
        seq: None,
        device: None,
        attachments: Vec::new(),
    };
    let caller = Caller {
        user: user("alice"),
        connection: ConnectionId::parse("a1").unwrap(),
    };
    let ack = sender.send(&caller, &frame, now_ms(), now_ms() + 5000).await.unwrap();
    (stack, stub, app, ack.message_id.to_string())
}

async fn ack(app: &AwsApp, by: &str, conn: &str, frame: Value) -> Option<Value> {
    let e = ws_event("ack", by, conn, Some(&frame.to_string()));
    let r = natter_ack::handle(app, invocation::<ApiGatewayWebsocketProxyRequest>(e, 6000))
        .await
        .unwrap();
    reply_frame(&r)
}

fn receipts(stub: &ConnectionsStub, c: &str) -> Vec<Value> {
    stub.posts_to(c)
        .into_iter()
        .filter(|p| p["type"] == "receipt")
        .collect()
}

#[tokio::test]
async fn an_ack_sends_a_delivered_receipt_to_every_sender_device() {
    let (stack, stub, app, id) = setup().await;
    let reply = ack(&app, "bob", "b1", json!({"action": "ack", "messageIds": [id]})).await;
    assert!(reply.is_none(), "no reply without a requestId");
    for c in ["a1", "a2"] {
        let r = receipts(&stub, c);
        assert_eq!(r.len(), 1, "{c}");
        assert_eq!(
            r[0],
            json!({"type": "receipt", "status": "delivered", "by": "bob", "messageIds": [id]})
        );
    }
    // Out of bob's mailbox: its row is a tombstone, kept while a retry of the send may come (a day).
    let row = &stack.scan("MailboxTable").await[0];
    assert_eq!(row["message_id"].as_s().unwrap(), &id);
    let delivered_at: i64 = row["delivered_at"].as_n().unwrap().parse().unwrap();
    let kept_until: i64 = row["expires_at"].as_n().unwrap().parse().unwrap();
    assert_eq!(kept_until, delivered_at / 1000 + 24 * 3600);
    let m = &stack.scan("MessagesTable").await[0];
    assert!(
        !m.contains_key("delivered_at") && !m.contains_key("inbox"),
        "the message is written once"
    );
}

#[tokio::test]
async fn an_ack_with_a_request_id_is_answered_ok() {
    let (_stack, _stub, app, id) = setup().await;
    let reply = ack(
        &app,
        "bob",
        "b1",
        json!({"action": "ack", "messageIds": [id], "requestId": "q7"}),
    )
    .await;
    assert_eq!(reply, Some(json!({"type": "ok", "requestId": "q7"})));
}

#[tokio::test]
async fn only_the_recipient_can_ack() {
    let (stack, stub, app, id) = setup().await;
    app.connect(&user("mallory"), &ConnectionId::parse("m1").unwrap(), now_ms())
        .await
        .unwrap();
    ack(&app, "mallory", "m1", json!({"action": "ack", "messageIds": [id]})).await;
    ack(&app, "alice", "a1", json!({"action": "ack", "messageIds": [id]})).await;
    assert!(receipts(&stub, "a1").is_empty() && receipts(&stub, "a2").is_empty());
    let row = &stack.scan("MailboxTable").await[0];
    assert!(!row.contains_key("delivered_at"), "still in bob's mailbox");
}

#[tokio::test]
async fn malformed_acks_are_bad_requests() {
    let (_stack, _stub, app, _id) = setup().await;
    for frame in [
        json!({"action": "ack"}),
        json!({"action": "ack", "messageIds": []}),
        json!({"action": "ack", "messageIds": ["nope"]}),
        json!({"action": "ack", "messageIds": [1]}),
    ] {
        let r = ack(&app, "bob", "b1", frame.clone()).await.unwrap();
        assert_eq!(r["code"], "bad_request", "{frame}");
    }
}
