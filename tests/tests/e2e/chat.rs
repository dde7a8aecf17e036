//! One-on-one chat over real websockets through natter-local: two users, two devices each.

use natter_tests::{Client, start};
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test]
async fn a_message_reaches_every_device_and_the_ack_and_receipt_come_back() {
    let local = start().await;
    let url = local.ws_url.clone();
    let (mut a1, mut a2) = (
        Client::connect(&url, "alice").await,
        Client::connect(&url, "alice").await,
    );
    let (mut b1, mut b2) = (Client::connect(&url, "bob").await, Client::connect(&url, "bob").await);

    let ack = a1.send_message("m-1", "bob", "Hello Bob").await;
    let id = ack["messageId"].as_str().unwrap().to_owned();
    assert_eq!(ack["clientMsgId"], "m-1");
    assert!(ack["timestamp"].as_i64().unwrap() > 0);

    for c in [&mut b1, &mut b2, &mut a2] {
        let m = c.wait_for("the message", |v| v["type"] == "message").await;
        assert_eq!(
            (m["messageId"].as_str(), m["from"].as_str(), m["to"].as_str()),
            (Some(id.as_str()), Some("alice"), Some("bob"))
        );
        assert_eq!(m["body"], "Hello Bob");
        assert_eq!(m["timestamp"], ack["timestamp"]);
    }
    assert!(
        a1.messages_within(Duration::from_millis(300)).await.is_empty(),
        "the sending device gets the ack only"
    );

    b1.send(json!({"action": "ack", "messageIds": [id]})).await;
    for c in [&mut a1, &mut a2] {
        let r = c.wait_for("a delivered receipt", |v| v["type"] == "receipt").await;
        assert_eq!(
            r,
            json!({"type": "receipt", "status": "delivered", "by": "bob", "messageIds": [id]})
        );
    }
    assert!(
        b1.try_wait_for(|v| v["type"] == "ok", Duration::from_millis(300))
            .await
            .is_none(),
        "an ack without requestId is not answered"
    );
    local.stop().await;
}

#[tokio::test]
async fn a_retry_gets_the_same_ack_and_no_second_delivery() {
    let local = start().await;
    let mut alice = Client::connect(&local.ws_url, "alice").await;
    let mut bob = Client::connect(&local.ws_url, "bob").await;
    let first = alice.send_message("m-retry", "bob", "once").await;
    let second = alice.send_message("m-retry", "bob", "once").await;
    assert_eq!(first["messageId"], second["messageId"]);
    assert_eq!(first["timestamp"], second["timestamp"]);
    let got = bob.messages_within(Duration::from_millis(800)).await;
    assert_eq!(got.len(), 1, "{got:?}");
    local.stop().await;
}

/// A clientMsgId reused for another recipient (a client bug, or ids that are not unique) used to be acked with the
/// first message's id while the second message was silently dropped: the sender believed it delivered.
#[tokio::test]
async fn a_client_msg_id_reused_for_another_conversation_is_refused_not_swallowed() {
    let local = start().await;
    let mut alice = Client::connect(&local.ws_url, "alice").await;
    let mut bob = Client::connect(&local.ws_url, "bob").await;
    let mut carol = Client::connect(&local.ws_url, "carol").await;
    let group = alice
        .request(json!({"action": "group", "op": "create", "name": "g", "members": ["bob"]}))
        .await["group"]["id"]
        .clone();
    let first = alice.send_message("m-reused", "bob", "for bob").await;
    assert_eq!(first["type"], "ack", "{first}");
    for (what, frame) in [
        (
            "another user",
            json!({"action": "send", "clientMsgId": "m-reused", "to": "carol", "body": "for carol"}),
        ),
        (
            "a group",
            json!({"action": "send", "clientMsgId": "m-reused", "group": group, "body": "for the group"}),
        ),
    ] {
        let reply = alice.request(frame).await;
        assert_eq!(reply["type"], "error", "{what}: {reply}");
        assert_eq!(reply["code"], "bad_request", "{what}: {reply}");
        assert!(
            reply.get("messageId").is_none(),
            "{what}: never acked with the first id: {reply}"
        );
    }
    let retry = alice.send_message("m-reused", "bob", "for bob").await;
    assert_eq!(
        retry["messageId"], first["messageId"],
        "a true retry still gets its ack"
    );
    let got = bob.messages_within(Duration::from_millis(800)).await;
    let bodies: Vec<&Value> = got.iter().map(|m| &m["body"]).collect();
    assert_eq!(
        bodies,
        vec![&json!("for bob")],
        "bob gets his message once and nothing else"
    );
    assert!(carol.messages_within(Duration::from_millis(300)).await.is_empty());
    local.stop().await;
}

#[tokio::test]
async fn messages_to_an_offline_user_wait_in_the_store() {
    let local = start().await;
    // Bob exists (he connected once) but is offline.
    Client::connect(&local.ws_url, "bob").await.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut alice = Client::connect(&local.ws_url, "alice").await;
    let ack = alice.send_message("m-off", "bob", "while you were out").await;
    assert_eq!(ack["type"], "ack");
    let unknown = alice
        .request(json!({"action": "send", "clientMsgId": "m-x", "to": "nobody", "body": "?"}))
        .await;
    assert_eq!(unknown["code"], "not_found");
    local.stop().await;
}
