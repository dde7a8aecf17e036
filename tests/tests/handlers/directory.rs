//! Groups against the real emulator: the directory operations, the server sequence under concurrency, the
//! fan-out over a large group in chunks, redelivery, and batched acks and reads.

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use natter_core::{aws::AwsApp, ids::ConnectionId, ids::UserId, lambda::ApiGatewayWebsocketProxyRequest, now_ms};
use natter_tests::testkit::{ConnectionsStub, TestStack, invocation, reply_frame, sqs_event, ws_event};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};

struct World {
    stack: TestStack,
    stub: ConnectionsStub,
    directory: AwsApp,
    send: AwsApp,
    ack: AwsApp,
    fanout: AwsApp,
}

async fn world() -> World {
    let stub = ConnectionsStub::start().await;
    let stack = TestStack::new(Some(&stub.base)).await;
    World {
        directory: stack.app("DirectoryFunction"),
        send: stack.app("SendFunction"),
        ack: stack.app("AckFunction"),
        fanout: stack.app("FanoutFunction"),
        stack,
        stub,
    }
}

impl World {
    /// Registers users in bulk (BatchWriteItem), as many connects would.
    async fn users(&self, ids: &[String]) {
        for chunk in ids.chunks(25) {
            let writes = chunk
                .iter()
                .map(|u| {
                    let item = HashMap::from([
                        ("user_id".to_owned(), AttributeValue::S(u.clone())),
                        ("joined_at".to_owned(), AttributeValue::N("1".into())),
                    ]);
                    WriteRequest::builder()
                        .put_request(PutRequest::builder().set_item(Some(item)).build().unwrap())
                        .build()
                })
                .collect();
            self.stack
                .dynamo
                .batch_write_item()
                .request_items(self.stack.table("UsersTable"), writes)
                .send()
                .await
                .unwrap();
        }
    }

    async fn online(&self, user: &str, conn: &str) {
        self.send
            .connect(
                &UserId::parse(user).unwrap(),
                &ConnectionId::parse(conn).unwrap(),
                now_ms(),
            )
            .await
            .unwrap();
    }

    async fn frame(&self, app: &AwsApp, route: &str, user: &str, conn: &str, frame: Value) -> Option<Value> {
        let e = ws_event(route, user, conn, Some(&frame.to_string()));
        let ev = invocation::<ApiGatewayWebsocketProxyRequest>(e, 6000);
        let r = match route {
            "send" => natter_send::handle(app, ev).await,
            "ack" => natter_ack::handle(app, ev).await,
            _ => natter_directory::handle(app, ev).await,
        };
        reply_frame(&r.unwrap())
    }

    async fn group(&self, user: &str, frame: Value) -> Value {
        self.frame(&self.directory, "default", user, "dir", frame)
            .await
            .unwrap()
    }

    /// Creates a group of `owner`'s friends (so they join at once).
    async fn create(&self, owner: &str, members: &[&str]) -> String {
        self.stack.befriend(owner, members).await;
        let r = self
            .group(
                owner,
                json!({"action": "group", "op": "create", "name": "Team", "members": members}),
            )
            .await;
        assert_eq!(r["type"], "group", "{r}");
        r["group"]["id"].as_str().unwrap().to_owned()
    }

    async fn group_send(&self, user: &str, conn: &str, cmid: &str, group: &str) -> Value {
        let f = json!({"action": "send", "clientMsgId": cmid, "group": group, "body": format!("hello from {user}")});
        self.frame(&self.send, "send", user, conn, f).await.unwrap()
    }

    /// Runs the fan-out consumer until its queue is empty; returns how many jobs it ran.
    async fn run_fanout(&self) -> usize {
        let mut ran = 0;
        loop {
            let jobs = self.stack.drain("FanoutQueue").await;
            if jobs.is_empty() {
                return ran;
            }
            ran += jobs.len();
            let e = sqs_event(&jobs, &self.stack.queue_arn("FanoutQueue"));
            let r = natter_fanout::handle(&self.fanout, invocation(e, 30_000))
                .await
                .unwrap();
            assert!(r.batch_item_failures.is_empty());
        }
    }

    fn received(&self, conn: &str) -> Vec<Value> {
        self.stub
            .posts_to(conn)
            .into_iter()
            .filter(|p| p["type"] == "message")
            .collect()
    }
}

#[tokio::test]
async fn the_directory_answers_members_lists_and_refuses_outsiders() {
    let w = world().await;
    w.users(&["ann", "ben", "cat", "dan", "eve"].map(String::from)).await;
    let g = w.create("ann", &["ben", "cat"]).await;
    let r = w
        .group("ann", json!({"action": "group", "op": "members", "group": g}))
        .await;
    assert_eq!(r["group"]["members"], json!(["ann", "ben", "cat"]));
    assert_eq!(r["group"]["owner"], "ann");
    assert_eq!(
        w.group("eve", json!({"action": "group", "op": "members", "group": g}))
            .await["code"],
        "forbidden"
    );
    assert_eq!(
        w.group("ann", json!({"action": "group", "op": "members", "group": "nope"}))
            .await["code"],
        "not_found"
    );
    assert_eq!(
        w.group(
            "ben",
            json!({"action": "group", "op": "add", "group": g, "user": "dan"})
        )
        .await["code"],
        "forbidden"
    );
    assert_eq!(
        w.group(
            "ann",
            json!({"action": "group", "op": "add", "group": g, "user": "ghost"})
        )
        .await["code"],
        "not_found"
    );
    // dan is not ann's friend: invited, a member once he joins.
    let r = w
        .group(
            "ann",
            json!({"action": "group", "op": "add", "group": g, "user": "dan"}),
        )
        .await;
    assert_eq!(
        (&r["group"]["members"], &r["group"]["invited"]),
        (&json!(["ann", "ben", "cat"]), &json!(["dan"]))
    );
    let r = w
        .group("dan", json!({"action": "group", "op": "join", "group": g}))
        .await;
    assert_eq!(r["group"]["members"], json!(["ann", "ben", "cat", "dan"]));
    let r = w
        .group(
            "ann",
            json!({"action": "group", "op": "remove", "group": g, "user": "ben"}),
        )
        .await;
    assert_eq!(r["group"]["members"], json!(["ann", "cat", "dan"]));
    let r = w
        .group("ann", json!({"action": "group", "op": "leave", "group": g}))
        .await;
    assert_eq!(r["group"]["owner"], "cat", "the longest-standing member owns the group");
    let list = w.group("dan", json!({"action": "group", "op": "list"})).await;
    assert_eq!(
        list["groups"],
        json!([{"id": g, "name": "Team", "lastSeq": 0, "unread": 0}])
    );
    assert_eq!(
        w.group("ann", json!({"action": "group", "op": "list"})).await["groups"],
        json!([])
    );
    w.group("cat", json!({"action": "group", "op": "leave", "group": g}))
        .await;
    let r = w
        .group("dan", json!({"action": "group", "op": "leave", "group": g}))
        .await;
    assert_eq!(r["group"]["members"], json!([]));
    assert!(
        w.stack.scan("GroupsTable").await.is_empty(),
        "the last member leaving ends the group"
    );
}

#[tokio::test]
async fn twenty_concurrent_sends_from_three_members_get_sequences_1_to_20_once_each() {
    let w = world().await;
    w.users(&["ann", "ben", "cat"].map(String::from)).await;
    let g = w.create("ann", &["ben", "cat"]).await;
    let sends = (0..20).map(|i| {
        let user = ["ann", "ben", "cat"][i % 3];
        let g = g.clone();
        let w = &w;
        async move { w.group_send(user, &format!("{user}-c"), &format!("cm-{i}"), &g).await }
    });
    let acks = futures::future::join_all(sends).await;
    let mut seqs: Vec<u64> = acks
        .iter()
        .map(|a| a["seq"].as_u64().unwrap_or_else(|| panic!("{a}")))
        .collect();
    seqs.sort();
    assert_eq!(seqs, (1..=20).collect::<Vec<_>>());
    let history = w.stack.scan("GroupHistoryTable").await;
    assert_eq!(history.len(), 20);
    // A retry of one of them burns no number.
    let again = w.group_send("ann", "ann-c", "cm-0", &g).await;
    assert_eq!(again["seq"], acks[0]["seq"]);
    let list = w.group("ben", json!({"action": "group", "op": "list"})).await;
    assert_eq!(list["groups"][0]["lastSeq"], 20);
}

#[tokio::test]
async fn a_non_members_send_is_forbidden_and_stores_nothing() {
    let w = world().await;
    w.users(&["ann", "eve"].map(String::from)).await;
    let g = w.create("ann", &[]).await;
    let r = w.group_send("eve", "e1", "cm-1", &g).await;
    assert_eq!(r["code"], "forbidden");
    assert!(w.stack.scan("MessagesTable").await.is_empty());
    assert!(w.stack.scan("SendClaimsTable").await.is_empty());
    assert!(w.stack.drain("FanoutQueue").await.is_empty());
    assert_eq!(
        w.group_send("eve", "e1", "cm-2", "no-such-group").await["code"],
        "not_found"
    );
}

#[tokio::test]
async fn a_group_message_reaches_every_online_device_but_the_sending_one_and_a_removed_member_stops_receiving() {
    let w = world().await;
    w.users(&["ann", "ben", "cat", "dan", "eve"].map(String::from)).await;
    let g = w.create("ann", &["ben", "cat", "dan", "eve"]).await;
    for (u, c) in [("ann", "a1"), ("ann", "a2"), ("ben", "b1"), ("ben", "b2")] {
        w.online(u, c).await;
    }
    let ack = w.group_send("ann", "a1", "cm-1", &g).await;
    assert_eq!(ack["seq"], 1);
    assert_eq!(
        w.run_fanout().await,
        0,
        "a group of one fan-out chunk is pushed by its send"
    );
    for c in ["a2", "b1", "b2"] {
        let got = w.received(c);
        assert_eq!(got.len(), 1, "{c}");
        assert_eq!(
            (got[0]["seq"].as_u64(), got[0]["group"].as_str()),
            (Some(1), Some(g.as_str()))
        );
        assert_eq!(got[0]["messageId"], ack["messageId"]);
    }
    assert!(w.received("a1").is_empty(), "the sending connection got the ack");
    w.group(
        "ann",
        json!({"action": "group", "op": "remove", "group": g, "user": "ben"}),
    )
    .await;
    w.group_send("ann", "a1", "cm-2", &g).await;
    w.run_fanout().await;
    assert_eq!(w.received("b1").len(), 1, "ben was removed");
    assert_eq!(w.received("a2").len(), 2);
}

#[tokio::test]
async fn fanout_over_a_thousand_members_reaches_every_online_one_in_chunks_and_survives_redelivery() {
    let w = world().await;
    let members: Vec<String> = (0..1000).map(|i| format!("u{i:04}")).collect();
    w.users(&members).await;
    let refs: Vec<&str> = members[1..].iter().map(String::as_str).collect();
    let g = w.create("u0000", &refs).await;
    // Every 20th member is online: 50 of 1,000.
    let online: Vec<&String> = members.iter().step_by(20).collect();
    for m in &online {
        w.online(m, &format!("c-{m}")).await;
    }
    w.group_send("u0000", "sender-conn", "big-1", &g).await;

    // The root job reads the members once and queues the other chunks: visible in the queue traffic.
    let root = w.stack.drain("FanoutQueue").await;
    assert_eq!(root.len(), 1);
    let e = sqs_event(&root, &w.stack.queue_arn("FanoutQueue"));
    assert!(
        natter_fanout::handle(&w.fanout, invocation(e, 30_000))
            .await
            .unwrap()
            .batch_item_failures
            .is_empty()
    );
    let chunks = w.stack.drain("FanoutQueue").await;
    assert_eq!(
        chunks.len(),
        9,
        "1,000 members in chunks of 100: the root serves one, nine are queued"
    );
    for c in &chunks {
        let job: Value = serde_json::from_str(c).unwrap();
        assert_eq!(job["members"].as_array().unwrap().len(), 100);
    }
    let e = sqs_event(&chunks, &w.stack.queue_arn("FanoutQueue"));
    assert!(
        natter_fanout::handle(&w.fanout, invocation(e, 30_000))
            .await
            .unwrap()
            .batch_item_failures
            .is_empty()
    );
    let reached: HashSet<String> = online
        .iter()
        .filter(|m| w.received(&format!("c-{m}")).len() == 1)
        .map(|m| m.to_string())
        .collect();
    assert_eq!(reached.len(), 50, "every online member, once");

    // A chunk delivered again (SQS redelivery) pushes again and loses no one.
    let e = sqs_event(&chunks[..1], &w.stack.queue_arn("FanoutQueue"));
    natter_fanout::handle(&w.fanout, invocation(e, 30_000)).await.unwrap();
    assert!(online.iter().all(|m| !w.received(&format!("c-{m}")).is_empty()));
}

#[tokio::test]
async fn batched_acks_and_reads_move_the_marks_and_the_unread_count_never_backwards() {
    let w = world().await;
    w.users(&["ann", "ben"].map(String::from)).await;
    let g = w.create("ann", &["ben"]).await;
    for i in 0..5 {
        w.group_send("ann", "a1", &format!("cm-{i}"), &g).await;
    }
    let unread = |list: Value| list["groups"][0]["unread"].as_u64().unwrap();
    assert_eq!(
        unread(w.group("ben", json!({"action": "group", "op": "list"})).await),
        5
    );
    assert_eq!(
        unread(w.group("ann", json!({"action": "group", "op": "list"})).await),
        0,
        "one's own messages"
    );
    let read = |n: u64| json!({"action": "read", "group": g, "upToSeq": n, "requestId": format!("r{n}")});
    assert_eq!(
        w.frame(&w.ack, "ack", "ben", "b1", read(3)).await.unwrap()["type"],
        "ok"
    );
    assert_eq!(
        unread(w.group("ben", json!({"action": "group", "op": "list"})).await),
        2
    );
    w.frame(&w.ack, "ack", "ben", "b1", read(1)).await;
    assert_eq!(
        unread(w.group("ben", json!({"action": "group", "op": "list"})).await),
        2,
        "never backwards"
    );
    let ack = json!({"action": "ack", "group": g, "upToSeq": 4});
    assert!(
        w.frame(&w.ack, "ack", "ben", "b1", ack).await.is_none(),
        "no reply without requestId"
    );
    let member = w
        .stack
        .scan("GroupMembersTable")
        .await
        .into_iter()
        .find(|m| m["user_id"].as_s().unwrap() == "ben")
        .unwrap();
    assert_eq!(member["last_ack_seq"].as_n().unwrap(), "4");
    let too_far = json!({"action": "ack", "group": g, "upToSeq": 9, "requestId": "x"});
    assert_eq!(
        w.frame(&w.ack, "ack", "ben", "b1", too_far).await.unwrap()["code"],
        "bad_request"
    );
    let outsider = json!({"action": "ack", "group": g, "upToSeq": 1, "requestId": "y"});
    assert_eq!(
        w.frame(&w.ack, "ack", "eve", "e1", outsider).await.unwrap()["code"],
        "forbidden"
    );
}
