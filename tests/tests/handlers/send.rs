//! `send` against the real emulator and a @connections stub: what the sender, the recipient's devices and the
//! sender's other devices see, and what is stored, including retries, concurrency, gone connections, bad input
//! and a backend failure in the middle of a send.

use natter_core::{
    aws::AwsApp,
    ids::{ConnectionId, UserId},
    lambda::ApiGatewayWebsocketProxyRequest,
    now_ms,
    ports::{Directory, PresenceStore},
};
use natter_tests::testkit::{ConnectionsStub, TestStack, invocation, reply_frame, ws_event};
use serde_json::{Value, json};

struct World {
    stack: TestStack,
    stub: ConnectionsStub,
    app: AwsApp,
}

async fn world() -> World {
    let stub = ConnectionsStub::start().await;
    let stack = TestStack::new(Some(&stub.base)).await;
    let app = stack.app("SendFunction");
    World { stack, stub, app }
}

fn user(u: &str) -> UserId {
    UserId::parse(u).unwrap()
}

impl World {
    async fn online(&self, u: &str, connections: &[&str]) {
        for c in connections {
            self.app
                .connect(&user(u), &ConnectionId::parse(c).unwrap(), now_ms())
                .await
                .unwrap();
        }
    }

    async fn send_raw(&self, from: &str, connection: &str, body: &str) -> Option<Value> {
        let e = ws_event("send", from, connection, Some(body));
        let r = natter_send::handle(&self.app, invocation::<ApiGatewayWebsocketProxyRequest>(e, 6000))
            .await
            .unwrap();
        assert_eq!(r.status_code, 200);
        reply_frame(&r)
    }

    async fn send(&self, from: &str, connection: &str, cmid: &str, to: &str, text: &str) -> Value {
        let frame = json!({"action": "send", "clientMsgId": cmid, "to": to, "body": text, "requestId": cmid});
        self.send_raw(from, connection, &frame.to_string())
            .await
            .expect("send always replies")
    }

    async fn stored(&self) -> (usize, usize) {
        (
            self.stack.scan("MessagesTable").await.len(),
            self.stack.scan("SendClaimsTable").await.len(),
        )
    }

    /// Runs the history consumer over the stored messages its stream delivers since the last call; how many.
    async fn index(&self) -> usize {
        let e = self.stack.stored_messages().await;
        let n = e["Records"].as_array().map_or(0, Vec::len);
        if n > 0 {
            let app = self.stack.app("IndexFunction");
            let r = natter_index::handle(&app, invocation(e, 20_000)).await.unwrap();
            assert!(r.batch_item_failures.is_empty());
        }
        n
    }

    /// Indexes what the stream delivers, then bob's unread count from alice and how many messages it delivered.
    async fn index_and_count(&self) -> (u64, usize) {
        let n = self.index().await;
        (self.unread("bob", "alice").await, n)
    }

    /// `owner`'s unread count with `peer` as a sync lists it.
    async fn unread(&self, owner: &str, peer: &str) -> u64 {
        let sessions = natter_core::ports::PullStore::sessions(&self.app.store, &user(owner), 10)
            .await
            .unwrap();
        let with_peer = sessions.into_iter().find(|s| s.peer == Some(user(peer)));
        with_peer.map_or(0, |s| s.unread)
    }
}

#[tokio::test]
async fn a_message_reaches_both_recipient_devices_and_the_senders_other_device() {
    let w = world().await;
    w.online("alice", &["a1", "a2"]).await;
    w.online("bob", &["b1", "b2"]).await;
    let ack = w.send("alice", "a1", "cm-1", "bob", "Hi Bob!").await;
    assert_eq!(ack["type"], "ack");
    assert_eq!(ack["clientMsgId"], "cm-1");
    assert_eq!(ack["requestId"], "cm-1");
    let id = ack["messageId"].as_str().unwrap();
    for c in ["b1", "b2", "a2"] {
        let got = w.stub.posts_to(c);
        assert_eq!(got.len(), 1, "{c}");
        let m = &got[0];
        assert_eq!(
            (m["type"].as_str(), m["messageId"].as_str()),
            (Some("message"), Some(id)),
            "{c}"
        );
        assert_eq!(
            (m["from"].as_str(), m["to"].as_str(), m["body"].as_str()),
            (Some("alice"), Some("bob"), Some("Hi Bob!"))
        );
        assert_eq!(m["timestamp"], ack["timestamp"]);
    }
    assert!(
        w.stub.posts_to("a1").is_empty(),
        "the sending connection gets the ack only"
    );
    let stored = w.stack.stored_messages().await;
    assert_eq!(stored["Records"].as_array().unwrap().len(), 1);
    assert_eq!(stored["Records"][0]["dynamodb"]["NewImage"]["message_id"]["S"], id);
}

#[tokio::test]
async fn an_offline_recipients_message_is_stored_and_indexed_with_one_unread() {
    let w = world().await;
    w.online("alice", &["a1"]).await;
    w.app.store.register(&user("bob"), now_ms()).await.unwrap();
    let ack = w.send("alice", "a1", "cm-1", "bob", "are you there?").await;
    let id = ack["messageId"].as_str().unwrap().to_owned();
    assert_eq!(w.stub.post_count(), 0);
    let messages = w.stack.scan("MessagesTable").await;
    assert_eq!(messages.len(), 1);
    let rows = w.stack.scan("MailboxTable").await;
    assert_eq!(rows.len(), 1, "in bob's mailbox until he acks");
    assert_eq!(rows[0]["recipient"].as_s().unwrap(), "bob");
    assert_eq!(rows[0]["message_id"].as_s().unwrap(), &id);

    w.index().await;
    let rows = w.stack.scan("MessageIndexTable").await;
    let owners: Vec<_> = rows.iter().map(|r| r["owner_id"].as_s().unwrap().clone()).collect();
    assert_eq!(owners, ["bob"], "one row per message, the recipient's");
    assert!(rows[0]["sk"].as_s().unwrap().ends_with(&format!("#{id}")));
    // Both read it in their history of the conversation.
    for (owner, peer) in [("alice", "bob"), ("bob", "alice")] {
        let page = natter_core::ports::PullStore::conversation(&w.app.store, &user(owner), &user(peer), None, 10)
            .await
            .unwrap();
        assert_eq!(
            page.ids.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
            std::slice::from_ref(&id),
            "{owner}"
        );
    }
    let sessions = w.stack.scan("SessionsTable").await;
    let bob = sessions.iter().find(|s| s["user_id"].as_s().unwrap() == "bob").unwrap();
    assert_eq!(bob["peer_id"].as_s().unwrap(), "alice");
    assert_eq!(w.unread("bob", "alice").await, 1);
    assert_eq!(bob["last_preview"].as_s().unwrap(), "are you there?");
    let alice = sessions
        .iter()
        .find(|s| s["user_id"].as_s().unwrap() == "alice")
        .unwrap();
    assert_eq!(w.unread("alice", "bob").await, 0, "own messages are not unread");
    assert!(alice.contains_key("last_preview"));
}

#[tokio::test]
async fn the_same_client_msg_id_twice_stores_one_message_and_acks_the_same_id() {
    let w = world().await;
    w.online("alice", &["a1"]).await;
    w.online("bob", &["b1"]).await;
    let first = w.send("alice", "a1", "cm-dup", "bob", "once").await;
    let second = w.send("alice", "a1", "cm-dup", "bob", "once").await;
    assert_eq!(first["messageId"], second["messageId"]);
    assert_eq!(first["timestamp"], second["timestamp"]);
    assert_eq!(w.stored().await, (1, 1));
    assert_eq!(w.stub.posts_to("b1").len(), 1, "a retry is not delivered again");
    // One insert on the stream however many attempts: unread 1.
    assert_eq!(w.index_and_count().await, (1, 1));
}

#[tokio::test]
async fn ten_concurrent_sends_of_one_client_msg_id_store_one_message() {
    let w = world().await;
    w.online("alice", &["a1"]).await;
    w.online("bob", &["b1"]).await;
    let acks = futures::future::join_all((0..10).map(|_| w.send("alice", "a1", "cm-race", "bob", "race"))).await;
    let ids: std::collections::HashSet<_> = acks
        .iter()
        .map(|a| a["messageId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1, "{acks:?}");
    assert_eq!(w.stored().await, (1, 1));
    assert_eq!(w.stub.posts_to("b1").len(), 1);
}

#[tokio::test]
async fn a_gone_connection_is_deleted_and_the_message_is_still_stored() {
    let w = world().await;
    w.online("alice", &["a1"]).await;
    w.online("bob", &["b1"]).await;
    // b2 opened a minute ago: a 410 from it now means gone (a younger one may still be inside `$connect`).
    w.app
        .connect(&user("bob"), &ConnectionId::parse("b2").unwrap(), now_ms() - 60_000)
        .await
        .unwrap();
    w.stub.mark_gone("b2");
    let ack = w.send("alice", "a1", "cm-1", "bob", "hello").await;
    assert_eq!(ack["type"], "ack");
    assert_eq!(w.stored().await.0, 1);
    assert_eq!(w.stub.posts_to("b1").len(), 1);
    let connections: Vec<_> = w
        .stack
        .scan("ConnectionsTable")
        .await
        .iter()
        .map(|c| c["connection_id"].as_s().unwrap().clone())
        .collect();
    assert!(!connections.contains(&"b2".to_owned()), "{connections:?}");
    let p = w.app.store.presence(&[user("bob")]).await.unwrap();
    assert_eq!(
        p[&user("bob")].live(now_ms()).map(|c| c.as_str()).collect::<Vec<_>>(),
        ["b1"]
    );
}

#[tokio::test]
async fn every_malformed_frame_gets_its_documented_error_and_stores_nothing() {
    let w = world().await;
    w.online("alice", &["a1"]).await;
    w.online("bob", &["b1"]).await;
    let cases: Vec<(String, &str)> = vec![
        ("{not json".into(), "bad_request"),
        ("[]".into(), "bad_request"),
        (r#"{"action":"send","to":"bob","body":"x"}"#.into(), "bad_request"),
        (
            r#"{"action":"send","clientMsgId":"has space","to":"bob","body":"x"}"#.into(),
            "bad_request",
        ),
        (
            r#"{"action":"send","clientMsgId":"c1","body":"x"}"#.into(),
            "bad_request",
        ),
        (
            r#"{"action":"send","clientMsgId":"c1","to":"bob","group":"g","body":"x"}"#.into(),
            "bad_request",
        ),
        (
            r#"{"action":"send","clientMsgId":"c1","to":"bo b","body":"x"}"#.into(),
            "bad_request",
        ),
        (
            r#"{"action":"send","clientMsgId":"c1","to":"bob","body":""}"#.into(),
            "bad_request",
        ),
        (
            r#"{"action":"send","clientMsgId":"c1","to":"bob","body":["x"]}"#.into(),
            "bad_request",
        ),
        (
            r#"{"action":"send","clientMsgId":"c1","to":"bob","body":"x","seq":-4}"#.into(),
            "bad_request",
        ),
        (
            r#"{"action":"send","clientMsgId":"c1","to":"bob","body":"x","requestId":7}"#.into(),
            "bad_request",
        ),
        (
            r#"{"action":"send","clientMsgId":"c1","to":"alice","body":"x"}"#.into(),
            "bad_request",
        ),
        (
            r#"{"action":"send","clientMsgId":"c1","to":"nobody","body":"x"}"#.into(),
            "not_found",
        ),
        (
            format!(
                r#"{{"action":"send","clientMsgId":"c1","to":"bob","body":"{}"}}"#,
                "a".repeat(16385)
            ),
            "too_large",
        ),
    ];
    for (frame, code) in &cases {
        let reply = w.send_raw("alice", "a1", frame).await.unwrap();
        assert_eq!(reply["type"], "error", "{frame:.80}");
        assert_eq!(reply["code"], *code, "{frame:.80}: {reply}");
        assert!(!reply["message"].as_str().unwrap().is_empty());
    }
    assert_eq!(w.stored().await, (0, 0), "nothing half-written");
    assert_eq!(w.stack.stored_messages().await["Records"], serde_json::json!([]));
    assert_eq!(w.stub.post_count(), 0);
}

#[tokio::test]
async fn a_body_of_16384_bytes_is_accepted() {
    let w = world().await;
    w.online("alice", &["a1"]).await;
    w.online("bob", &["b1"]).await;
    let body = "é".repeat(8192);
    assert_eq!(body.len(), 16384);
    let ack = w.send("alice", "a1", "cm-big", "bob", &body).await;
    assert_eq!(ack["type"], "ack");
    assert_eq!(w.stub.posts_to("b1")[0]["body"].as_str().unwrap().len(), 16384);
}

#[tokio::test]
async fn a_failure_mid_send_leaves_the_stored_message_to_a_retry_that_finishes_it_exactly_once() {
    let w = world().await;
    w.online("alice", &["a1"]).await;
    w.online("bob", &["b1"]).await;
    // The mailbox table is missing for the first attempt: the message is stored, its mailbox row is not. (A
    // missing table is an `internal` error, a misconfiguration; throttling, which is `unavailable`, is tested over
    // websockets in e2e::reliability.)
    let mut config = w.stack.config("SendFunction");
    config.tables.mailbox = "no-such-table".to_owned();
    let broken = AwsApp::from_config(&w.stack.sdk, &config, true, Default::default()).unwrap();
    let frame = json!({"action": "send", "clientMsgId": "cm-x", "to": "bob", "body": "hello"}).to_string();
    let e = ws_event("send", "alice", "a1", Some(&frame));
    let r = natter_send::handle(&broken, invocation::<ApiGatewayWebsocketProxyRequest>(e, 6000))
        .await
        .unwrap();
    let reply = reply_frame(&r).unwrap();
    assert_eq!(
        (reply["type"].as_str(), reply["code"].as_str()),
        (Some("error"), Some("internal")),
        "{reply}"
    );
    assert_eq!(reply["clientMsgId"], "cm-x");

    let ack = w.send_raw("alice", "a1", &frame).await.unwrap();
    assert_eq!(ack["type"], "ack", "{ack}");
    let again = w.send_raw("alice", "a1", &frame).await.unwrap();
    assert_eq!(again["messageId"], ack["messageId"]);
    assert_eq!(w.stored().await, (1, 1), "one message");
    // The first attempt's insert is on the stream; the retries add none: counted exactly once.
    assert_eq!(w.index_and_count().await, (1, 1), "indexed exactly once");
    let (waiting, _) = natter_core::ports::PullStore::inbox(&w.app.store, &user("bob"), None, 10)
        .await
        .unwrap();
    assert_eq!(waiting.len(), 1, "the retry put the mailbox row");
    assert_eq!(waiting[0].id.to_string(), ack["messageId"].as_str().unwrap());
    // The first attempt failed before its push: the first retry, which put the mailbox row back, pushes it to
    // bob's device; the second finds the row and only acks.
    let pushed: Vec<_> = w.stub.posts_to("b1").iter().map(|p| p["messageId"].clone()).collect();
    assert_eq!(pushed, [ack["messageId"].clone()]);
}

#[tokio::test]
async fn a_connection_still_inside_connect_that_answers_410_is_kept() {
    let w = world().await;
    w.online("alice", &["a1"]).await;
    // bob's reconnect: registered by `$connect`, but not open yet, so API Gateway answers 410.
    w.online("bob", &["b9"]).await;
    w.stub.mark_gone("b9");
    let ack = w.send("alice", "a1", "cm-young", "bob", "during connect").await;
    assert_eq!(ack["type"], "ack");
    let p = w.app.store.presence(&[user("bob")]).await.unwrap();
    assert_eq!(
        p[&user("bob")].live(now_ms()).map(|c| c.as_str()).collect::<Vec<_>>(),
        ["b9"],
        "kept in presence"
    );
    let connections: Vec<_> = w
        .stack
        .scan("ConnectionsTable")
        .await
        .iter()
        .filter_map(|c| c.get("connection_id").and_then(|v| v.as_s().ok()).cloned())
        .collect();
    assert!(connections.contains(&"b9".to_owned()), "{connections:?}");
}

#[tokio::test]
async fn a_message_that_fails_to_index_from_the_stream_is_handed_to_the_index_queue_and_indexed_there_once() {
    let w = world().await;
    w.online("alice", &["a1"]).await;
    w.online("bob", &["b1"]).await;
    let ack = w.send("alice", "a1", "cm-late", "bob", "indexed late").await;
    assert_eq!(ack["type"], "ack");
    let stored = w.stack.stored_messages().await;
    // The Sessions table is missing for this invocation: the message cannot be indexed from the stream.
    let mut config = w.stack.config("IndexFunction");
    config.tables.sessions = "no-such-table".to_owned();
    let broken = AwsApp::from_config(&w.stack.sdk, &config, false, Default::default()).unwrap();
    let r = natter_index::handle(&broken, invocation(stored, 20_000)).await.unwrap();
    assert!(
        r.batch_item_failures.is_empty(),
        "handed over, not held up in the stream: {r:?}"
    );
    let jobs = w.stack.drain("IndexQueue").await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        serde_json::from_str::<Value>(&jobs[0]).unwrap()["messageId"],
        ack["messageId"]
    );
    assert_eq!(w.unread("bob", "alice").await, 0, "not indexed yet");
    // The queue's delivery, twice (as SQS may), indexes it once.
    let app = w.stack.app("IndexFunction");
    let e = natter_tests::testkit::sqs_event(&[jobs[0].clone(), jobs[0].clone()], &w.stack.queue_arn("IndexQueue"));
    let r = natter_index::handle(&app, invocation(e, 20_000)).await.unwrap();
    assert!(r.batch_item_failures.is_empty());
    assert_eq!(w.unread("bob", "alice").await, 1);
}
