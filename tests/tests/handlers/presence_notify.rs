//! The presence consumer against the emulator: friends are told each change once, a redelivered event tells
//! nothing new, a late event tells only what still holds, and connections that vanished without `$disconnect`
//! (found gone by a push, or past their expiry) leave the user offline.

use natter_core::{
    aws::AwsApp,
    frames::FriendsOp,
    ids::{ConnectionId, UserId},
    now_ms,
    ports::PresenceStore,
};
use natter_tests::testkit::{ConnectionsStub, TestStack, invocation, sqs_event};
use serde_json::Value;

fn user(u: &str) -> UserId {
    UserId::parse(u).unwrap()
}

fn conn(c: &str) -> ConnectionId {
    ConnectionId::parse(c).unwrap()
}

struct World {
    stack: TestStack,
    stub: ConnectionsStub,
    connect: AwsApp,
    disconnect: AwsApp,
    directory: AwsApp,
    consumer: AwsApp,
}

async fn world() -> World {
    let stub = ConnectionsStub::start().await;
    let stack = TestStack::new(Some(&stub.base)).await;
    World {
        connect: stack.app("ConnectFunction"),
        disconnect: stack.app("DisconnectFunction"),
        directory: stack.app("DirectoryFunction"),
        consumer: stack.app("PresenceNotifyFunction"),
        stack,
        stub,
    }
}

impl World {
    /// Takes the queued presence events off the queue.
    async fn events(&self) -> Vec<String> {
        self.stack.drain("PresenceQueue").await
    }

    /// Runs the consumer over `events` as one SQS batch; every record must succeed.
    async fn consume(&self, events: &[String]) {
        if events.is_empty() {
            return;
        }
        let e = sqs_event(events, &self.stack.queue_arn("PresenceQueue"));
        let r = natter_presence_notify::handle(&self.consumer, invocation(e, 20_000))
            .await
            .unwrap();
        assert!(r.batch_item_failures.is_empty());
    }

    /// The presence pushes a connection got, as (user, status).
    fn told(&self, connection: &str) -> Vec<(String, String)> {
        self.stub
            .posts_to(connection)
            .iter()
            .filter(|p| p["type"] == "presence")
            .map(|p: &Value| {
                (
                    p["user"].as_str().unwrap().to_owned(),
                    p["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// `a` asks, `b` accepts.
    async fn befriend(&self, a: &str, b: &str) {
        for (from, to) in [(a, b), (b, a)] {
            self.directory
                .friends_op(&user(from), &FriendsOp::Add { user: user(to) }, now_ms())
                .await
                .unwrap();
        }
    }
}

#[tokio::test]
async fn each_change_is_told_once_and_redelivered_or_late_events_tell_nothing_wrong() {
    let w = world().await;
    w.connect.connect(&user("alice"), &conn("a1"), now_ms()).await.unwrap();
    w.connect.connect(&user("bob"), &conn("b1"), now_ms()).await.unwrap();
    w.befriend("alice", "bob").await;
    let online = w.events().await;
    assert_eq!(online.len(), 2, "{online:?}");
    w.consume(&online).await;
    assert_eq!(w.told("a1"), [("bob".into(), "online".into())]);
    assert_eq!(w.told("b1"), [("alice".into(), "online".into())]);

    // Redelivered: nothing new.
    w.consume(&online).await;
    assert_eq!(w.told("a1").len(), 1);
    assert_eq!(w.told("b1").len(), 1);

    // bob leaves: alice is told once, however often the event comes.
    w.disconnect
        .drop_connection(&user("bob"), &conn("b1"), now_ms())
        .await
        .unwrap();
    let offline = w.events().await;
    w.consume(&offline).await;
    w.consume(&offline).await;
    let posts: Vec<Value> = w.stub.posts_to("a1");
    let last = posts.iter().rfind(|p| p["type"] == "presence").unwrap();
    assert_eq!(
        (last["user"].as_str(), last["status"].as_str()),
        (Some("bob"), Some("offline"))
    );
    assert!(last["lastSeen"].is_number(), "{last}");
    assert_eq!(w.told("a1").len(), 2);

    // bob is back before a late copy of the old online event arrives: it tells online, which holds; the
    // fresh online event then tells nothing more.
    w.connect.connect(&user("bob"), &conn("b2"), now_ms()).await.unwrap();
    let back = w.events().await;
    w.consume(&online).await;
    assert_eq!(w.told("a1").last(), Some(&("bob".into(), "online".into())));
    w.consume(&back).await;
    assert_eq!(w.told("a1").len(), 3, "{:?}", w.told("a1"));
}

#[tokio::test]
async fn connections_that_vanish_without_disconnect_leave_the_user_offline() {
    let w = world().await;
    w.connect.connect(&user("alice"), &conn("a1"), now_ms()).await.unwrap();
    // bob connected a minute ago (a 410 from a connection younger than `$connect` can run means "not open yet").
    w.connect
        .connect(&user("bob"), &conn("b1"), now_ms() - 60_000)
        .await
        .unwrap();
    w.befriend("alice", "bob").await;
    w.consume(&w.events().await).await;

    // bob's phone lost its network: API Gateway answers 410 for b1 and no $disconnect ever comes. The next push
    // to bob (here alice going offline) finds it gone, removes it, and bob goes offline too.
    w.stub.mark_gone("b1");
    w.disconnect
        .drop_connection(&user("alice"), &conn("a1"), now_ms())
        .await
        .unwrap();
    w.consume(&w.events().await).await;
    let connections: Vec<String> = w
        .stack
        .scan("ConnectionsTable")
        .await
        .iter()
        .filter_map(|c| c.get("connection_id").and_then(|v| v.as_s().ok()).cloned())
        .collect();
    assert!(!connections.contains(&"b1".to_owned()), "{connections:?}");
    let p = w.consumer.store.presence(&[user("bob")]).await.unwrap();
    assert_eq!(p[&user("bob")].status(now_ms()), natter_core::frames::Status::Offline);
    assert!(p[&user("bob")].last_seen.is_some());

    // carol's only connection expired (its TTL passed) without a $disconnect: she counts as offline, for her
    // friends' lists and for pushes, before DynamoDB's TTL even deletes the item.
    let ttl_ms = w.connect.settings.connection_ttl_secs * 1000;
    w.connect
        .connect(&user("carol"), &conn("c1"), now_ms() - ttl_ms - 60_000)
        .await
        .unwrap();
    w.connect.connect(&user("alice"), &conn("a2"), now_ms()).await.unwrap();
    w.befriend("alice", "carol").await;
    let list = w
        .directory
        .friends_op(&user("alice"), &FriendsOp::List, now_ms())
        .await
        .unwrap()
        .to_json();
    let list: Value = serde_json::from_str(&list).unwrap();
    let carol = list["friends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["user"] == "carol")
        .unwrap();
    assert_eq!(carol["status"], "offline", "{list}");
}
