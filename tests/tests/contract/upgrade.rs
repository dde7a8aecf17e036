//! Data a deployed stack wrote before a change of layout, read by the code after it (DynamoDB only: the fakes
//! have no past).

use aws_sdk_dynamodb::types::AttributeValue;
use natter_core::{
    frames::Target,
    ids::{Body, ClientMsgId, MessageId, UserId},
    jobs::IndexJob,
    model::StoredMessage,
    ports::{IndexStore, PullStore},
};
use natter_tests::testkit::TestStack;

const T0: i64 = 1_700_000_000_000;

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn user(name: &str) -> UserId {
    UserId::parse(name).unwrap()
}

async fn unread(stack: &TestStack, owner: &str, peer: &str) -> u64 {
    let sessions = stack.store().sessions(&user(owner), 10).await.unwrap();
    let with_peer = sessions.into_iter().find(|x| x.peer == Some(user(peer)));
    with_peer.map_or(0, |x| x.unread)
}

/// Before issue 19, indexing counted unread in the session item (`unread`, in a transaction with the row) and
/// wrote a row in each participant's partition, without the received mark. Those messages must still count,
/// once, until a read, and show once in history.
#[tokio::test]
async fn messages_indexed_before_issue_19_count_unread_once_until_a_read_and_show_once_in_history() {
    let stack = TestStack::new(None).await;
    let (sessions, index) = (stack.table("SessionsTable"), stack.table("MessageIndexTable"));
    let old: Vec<MessageId> = (0..2).map(|i| MessageId::generate(T0 + i)).collect();
    // Then every message had a row in both partitions.
    for id in &old {
        for (owner, peer, direction) in [("bob", "alice", "in"), ("alice", "bob", "out")] {
            let sk = format!("{peer}#{:013}#{id}", id.timestamp());
            let row = stack.dynamo.put_item().table_name(&index);
            let row = row
                .item("owner_id", s(owner))
                .item("sk", s(&sk))
                .item("direction", s(direction));
            row.send().await.unwrap();
        }
    }
    let newest_old = old[1];
    let session = stack.dynamo.put_item().table_name(&sessions);
    let session = session
        .item("user_id", s("bob"))
        .item("peer_id", s("alice"))
        .item("unread", n(2))
        .item("last_message_id", s(&newest_old.to_string()))
        .item("last_from", s("alice"))
        .item("last_preview", s("before the upgrade"))
        .item("last_ts", n(newest_old.timestamp()))
        .item("last_recv_ts", n(newest_old.timestamp()));
    session.send().await.unwrap();
    assert_eq!(
        unread(&stack, "bob", "alice").await,
        2,
        "the old count, and no row counted twice"
    );

    let store = stack.store();
    let new = StoredMessage::new(
        MessageId::generate(T0 + 100),
        user("alice"),
        Target::To(user("bob")),
        Body::parse("after the upgrade").unwrap(),
        ClientMsgId::parse("c-new").unwrap(),
    );
    store
        .index_direct(&IndexJob::new(&new, &user("bob")), None)
        .await
        .unwrap();
    assert_eq!(
        unread(&stack, "bob", "alice").await,
        3,
        "the old count plus the new row"
    );
    for (owner, peer) in [("alice", "bob"), ("bob", "alice")] {
        let page = store.conversation(&user(owner), &user(peer), None, 10).await.unwrap();
        assert_eq!(
            page.ids,
            [new.id, old[1], old[0]],
            "each message once in {owner}'s history"
        );
    }

    let receipt = store
        .read_direct(&user("bob"), &user("alice"), None, T0 / 1000 + 3600)
        .await
        .unwrap();
    assert_eq!(receipt, Some(new.timestamp()));
    assert_eq!(unread(&stack, "bob", "alice").await, 0, "a read clears both");
    let item = stack.dynamo.get_item().table_name(&sessions);
    let item = item
        .key("user_id", s("bob"))
        .key("peer_id", s("alice"))
        .send()
        .await
        .unwrap();
    assert!(
        !item.item.unwrap().contains_key("unread"),
        "the old attribute is gone with the read"
    );
}
