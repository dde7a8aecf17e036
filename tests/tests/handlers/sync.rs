//! sync and history against the real emulator: a user back from offline gets every missed message once, oldest
//! first, with unread counts; history pages walk back without gaps; reads reset unread and send a receipt.

use natter_core::{aws::AwsApp, ids::ConnectionId, ids::UserId, lambda::ApiGatewayWebsocketProxyRequest, now_ms};
use natter_tests::testkit::{ConnectionsStub, TestStack, invocation, reply_frame, ws_event};
use serde_json::{Value, json};
use std::collections::HashSet;

struct World {
    stack: TestStack,
    stub: ConnectionsStub,
    send: AwsApp,
    sync: AwsApp,
    ack: AwsApp,
    directory: AwsApp,
    history: AwsApp,
}

async fn world() -> World {
    let stub = ConnectionsStub::start().await;
    let stack = TestStack::new(Some(&stub.base)).await;
    // These tests send a few hundred frames as fast as the emulator takes them: the rate limit has its own tests.
    let unlimited = |s: &mut natter_core::config::Settings| s.frame_limit = 0;
    World {
        send: stack.app_with("SendFunction", unlimited),
        sync: stack.app_with("SyncFunction", unlimited),
        ack: stack.app_with("AckFunction", unlimited),
        directory: stack.app_with("DirectoryFunction", unlimited),
        history: stack.app("IndexFunction"),
        stack,
        stub,
    }
}

impl World {
    async fn call(&self, route: &str, user: &str, frame: Value) -> Option<Value> {
        let conn = format!("{user}-1");
        let e =
            invocation::<ApiGatewayWebsocketProxyRequest>(ws_event(route, user, &conn, Some(&frame.to_string())), 6000);
        let r = match frame["action"].as_str().unwrap_or_default() {
            "send" => natter_send::handle(&self.send, e).await,
            "ack" | "read" => natter_ack::handle(&self.ack, e).await,
            "group" | "friends" | "heartbeat" => natter_directory::handle(&self.directory, e).await,
            _ => natter_sync::handle(&self.sync, e).await,
        };
        reply_frame(&r.unwrap())
    }

    async fn online(&self, user: &str) {
        self.send
            .connect(
                &UserId::parse(user).unwrap(),
                &ConnectionId::parse(&format!("{user}-1")).unwrap(),
                now_ms(),
            )
            .await
            .unwrap();
    }

    /// Runs the history consumer over the stored messages its stream delivers.
    async fn index(&self) {
        loop {
            let e = self.stack.stored_messages().await;
            if e["Records"].as_array().is_none_or(Vec::is_empty) {
                return;
            }
            assert!(
                natter_index::handle(&self.history, invocation(e, 20_000))
                    .await
                    .unwrap()
                    .batch_item_failures
                    .is_empty()
            );
        }
    }

    async fn sync_all(&self, user: &str) -> (Vec<Value>, Value) {
        let first = self
            .call("sync", user, json!({"action": "sync", "requestId": "s0"}))
            .await
            .unwrap();
        assert_eq!(first["type"], "sync", "{first}");
        let conversations = first["conversations"].clone();
        let mut messages: Vec<Value> = first["messages"].as_array().unwrap().clone();
        let mut next = first["next"].clone();
        while let Some(c) = next.as_str().map(str::to_owned) {
            let page = self
                .call("sync", user, json!({"action": "sync", "cursor": c}))
                .await
                .unwrap();
            assert!(page.get("conversations").is_none());
            assert!(page["messages"].as_array().unwrap().len() <= 100);
            messages.extend(page["messages"].as_array().unwrap().iter().cloned());
            next = page["next"].clone();
        }
        (messages, conversations)
    }
}

#[tokio::test]
async fn an_offline_user_gets_150_missed_messages_once_oldest_first_with_unread_counts() {
    let w = world().await;
    w.online("alice").await;
    w.online("bob").await;
    w.stack.befriend("alice", &["bob"]).await;
    let g = w
        .call(
            "group",
            "alice",
            json!({"action": "group", "op": "create", "name": "Trip", "members": ["bob"]}),
        )
        .await
        .unwrap();
    let g = g["group"]["id"].as_str().unwrap().to_owned();
    w.send
        .drop_connection(
            &UserId::parse("bob").unwrap(),
            &ConnectionId::parse("bob-1").unwrap(),
            now_ms(),
        )
        .await
        .unwrap();

    let mut direct = Vec::new();
    for i in 0..120 {
        let ack = w
            .call(
                "send",
                "alice",
                json!({"action": "send", "clientMsgId": format!("d{i}"), "to": "bob", "body": format!("d{i}")}),
            )
            .await
            .unwrap();
        direct.push(ack["messageId"].as_str().unwrap_or_else(|| panic!("{ack}")).to_owned());
    }
    for i in 0..30 {
        w.call(
            "send",
            "alice",
            json!({"action": "send", "clientMsgId": format!("g{i}"), "group": g, "body": format!("g{i}")}),
        )
        .await;
    }
    w.index().await;

    let (messages, conversations) = w.sync_all("bob").await;
    let unread = |key: &str, id: &str| {
        conversations.as_array().unwrap().iter().find(|c| c[key] == id).unwrap()["unread"].clone()
    };
    assert_eq!(unread("with", "alice"), 120);
    assert_eq!(unread("group", &g), 30);
    let with_alice = conversations
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["with"] == "alice")
        .unwrap();
    assert_eq!(with_alice["last"]["preview"], "d119");
    let ids: Vec<&str> = messages.iter().map(|m| m["messageId"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 150);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 150, "each once");
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
    let seqs: Vec<u64> = messages
        .iter()
        .filter_map(|m| m["seq"].as_u64().filter(|_| m["group"].is_string()))
        .collect();
    assert_eq!(seqs, (1..=30).collect::<Vec<_>>());

    // Bob acknowledges everything: one-on-one by id (100 per frame), the group in one batched ack.
    for chunk in direct.chunks(100) {
        w.call("ack", "bob", json!({"action": "ack", "messageIds": chunk}))
            .await;
    }
    w.call("ack", "bob", json!({"action": "ack", "group": g, "upToSeq": 30}))
        .await;
    let (after, _) = w.sync_all("bob").await;
    assert!(after.is_empty(), "acknowledged messages do not come back: {after:?}");
}

/// The first page of alice's history with bob, two messages long.
async fn alices_newest_two(w: &World) -> Value {
    let page = json!({"action": "history", "with": "bob", "limit": 2});
    w.call("history", "alice", page).await.unwrap()
}

#[tokio::test]
async fn history_pages_of_50_walk_back_through_120_messages_and_reads_send_a_receipt() {
    let w = world().await;
    w.online("alice").await;
    w.online("bob").await;
    let mut sent = Vec::new();
    for i in 0..120 {
        let ack = w
            .call(
                "send",
                "alice",
                json!({"action": "send", "clientMsgId": format!("h{i}"), "to": "bob", "body": format!("h{i}")}),
            )
            .await
            .unwrap();
        sent.push(ack["messageId"].as_str().unwrap().to_owned());
    }
    w.index().await;
    let mut walked = Vec::new();
    let mut before: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut f = json!({"action": "history", "with": "bob", "limit": 50});
        if let Some(b) = &before {
            f["before"] = b.clone().into();
        }
        let page = w.call("history", "alice", f).await.unwrap();
        pages += 1;
        let msgs = page["messages"].as_array().unwrap();
        assert!(msgs.len() <= 50);
        walked.extend(
            msgs.iter()
                .map(|m| (m["messageId"].as_str().unwrap().to_owned(), m["status"].clone())),
        );
        match page["next"].as_str() {
            Some(n) => before = Some(n.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut expected = sent.clone();
    expected.reverse();
    assert_eq!(
        walked.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(),
        expected,
        "newest first, no gap or repeat"
    );
    assert!(walked.iter().all(|(_, s)| s == "sent"));

    // Bob acks the newest and reads the conversation: unread 0, and alice gets a read receipt.
    w.call("ack", "bob", json!({"action": "ack", "messageIds": [sent[119]]}))
        .await;
    let newest = alices_newest_two(&w).await;
    let statuses: Vec<_> = newest["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["status"].clone())
        .collect();
    assert_eq!(
        statuses,
        ["delivered", "sent"],
        "the acked one is delivered, the one before is not: {newest}"
    );
    let (_, conversations) = w.sync_all("bob").await;
    assert_eq!(conversations[0]["unread"], 120);
    assert_eq!(
        w.call(
            "read",
            "bob",
            json!({"action": "read", "with": "alice", "requestId": "r"})
        )
        .await
        .unwrap()["type"],
        "ok"
    );
    let (_, conversations) = w.sync_all("bob").await;
    assert_eq!(conversations[0]["unread"], 0);
    let receipt = w
        .stub
        .posts_to("alice-1")
        .into_iter()
        .find(|p| p["type"] == "receipt" && p["status"] == "read")
        .unwrap();
    assert_eq!(receipt["by"], "bob");
    let newest = alices_newest_two(&w).await;
    assert_eq!(newest["messages"][0]["status"], "read");
    assert_eq!(receipt["upTo"], newest["messages"][0]["timestamp"]);
}

#[tokio::test]
async fn strangers_bad_cursors_and_bad_limits_are_refused() {
    let w = world().await;
    for u in ["alice", "bob", "mallory"] {
        w.online(u).await;
    }
    w.stack.befriend("alice", &["bob"]).await;
    let g = w
        .call(
            "group",
            "alice",
            json!({"action": "group", "op": "create", "name": "Pair", "members": ["bob"]}),
        )
        .await
        .unwrap();
    let g = g["group"]["id"].as_str().unwrap().to_owned();
    w.call(
        "send",
        "alice",
        json!({"action": "send", "clientMsgId": "x1", "to": "bob", "body": "private"}),
    )
    .await;
    w.call(
        "send",
        "alice",
        json!({"action": "send", "clientMsgId": "x2", "group": g, "body": "private too"}),
    )
    .await;
    w.index().await;
    let r = w
        .call("history", "mallory", json!({"action": "history", "group": g}))
        .await
        .unwrap();
    assert_eq!(r["code"], "forbidden");
    let r = w
        .call("history", "mallory", json!({"action": "history", "with": "alice"}))
        .await
        .unwrap();
    assert_eq!(
        r["messages"],
        json!([]),
        "mallory's own conversation with alice is empty"
    );
    assert_eq!(
        w.call("history", "mallory", json!({"action": "history", "with": "ghost"}))
            .await
            .unwrap()["code"],
        "not_found"
    );
    for f in [
        json!({"action": "history", "with": "bob", "limit": 0}),
        json!({"action": "history", "with": "bob", "limit": 101}),
        json!({"action": "history", "with": "bob", "before": "not-a-cursor"}),
        json!({"action": "history", "group": g, "before": "x"}),
        json!({"action": "sync", "cursor": "garbage!"}),
        json!({"action": "sync", "cursor": 12}),
    ] {
        let r = w.call("history", "alice", f.clone()).await.unwrap();
        assert_eq!(r["code"], "bad_request", "{f}");
    }
}

#[tokio::test]
async fn friends_heartbeat_and_presence_are_told_to_online_friends() {
    let w = world().await;
    w.online("alice").await;
    w.call("friends", "bob", json!({"action": "friends", "op": "list"}))
        .await;
    assert_eq!(
        w.call(
            "friends",
            "alice",
            json!({"action": "friends", "op": "add", "user": "ghost"})
        )
        .await
        .unwrap()["code"],
        "not_found"
    );
    // bob exists once he connected; alice befriends him while he is offline.
    w.online("bob").await;
    w.send
        .drop_connection(
            &UserId::parse("bob").unwrap(),
            &ConnectionId::parse("bob-1").unwrap(),
            now_ms(),
        )
        .await
        .unwrap();
    let r = w
        .call(
            "friends",
            "alice",
            json!({"action": "friends", "op": "add", "user": "bob"}),
        )
        .await
        .unwrap();
    assert_eq!(
        r["friends"],
        json!([{"user": "bob", "state": "requested"}]),
        "no status before bob accepts"
    );
    let r = w
        .call("friends", "bob", json!({"action": "friends", "op": "list"}))
        .await
        .unwrap();
    assert_eq!(r["friends"], json!([{"user": "alice", "state": "incoming"}]));
    let r = w
        .call(
            "friends",
            "bob",
            json!({"action": "friends", "op": "add", "user": "alice"}),
        )
        .await
        .unwrap();
    assert_eq!(
        r["friends"],
        json!([{"user": "alice", "state": "friend", "status": "online", "lastSeen": null}]),
        "accepted; alice never seen offline"
    );
    let r = w
        .call("friends", "alice", json!({"action": "friends", "op": "list"}))
        .await
        .unwrap();
    assert_eq!(r["friends"][0]["status"], "offline");
    assert!(r["friends"][0]["lastSeen"].is_number());
    let pong = w
        .call("heartbeat", "alice", json!({"action": "heartbeat", "requestId": "hb"}))
        .await
        .unwrap();
    assert_eq!(
        (pong["type"].as_str(), pong["requestId"].as_str()),
        (Some("pong"), Some("hb"))
    );
    // Alice's last seen, as her friend bob's list shows it.
    let alice_seen = || async {
        w.call("friends", "bob", json!({"action": "friends", "op": "list"}))
            .await
            .unwrap()["friends"][0]["lastSeen"]
            .clone()
    };
    assert_eq!(alice_seen().await, pong["timestamp"], "a heartbeat refreshes last seen");
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let again = w
        .call("heartbeat", "alice", json!({"action": "heartbeat"}))
        .await
        .unwrap();
    assert!(again["timestamp"].as_i64() > pong["timestamp"].as_i64());
    assert_eq!(
        alice_seen().await,
        pong["timestamp"],
        "a heartbeat soon after leaves it: last seen is written again once half an hour old"
    );
    let r = w
        .call(
            "friends",
            "alice",
            json!({"action": "friends", "op": "remove", "user": "bob"}),
        )
        .await
        .unwrap();
    assert_eq!(r["friends"], json!([]));
}
