//! Data the ports cannot write themselves, read by the code: what a deployed stack wrote before a change of
//! layout, and what a half-failed write leaves (DynamoDB only: the fakes have no past).

use aws_sdk_dynamodb::types::AttributeValue;
use natter_core::{
    frames::Target,
    ids::{Body, ClientMsgId, MessageId, UserId},
    jobs::IndexJob,
    model::StoredMessage,
    ports::{IndexStore, MessageStore, PullStore},
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

/// A message from alice to bob put straight into Messages, bypassing the store: waiting in the old Inbox index
/// (as stored before the Mailbox table), or with no mailbox entry at all (as a half-failed send leaves it).
async fn put_raw_message(stack: &TestStack, id: MessageId, in_old_index: bool) {
    let put = stack.dynamo.put_item().table_name(stack.table("MessagesTable"));
    let put = if in_old_index { put.item("inbox", s("bob")) } else { put };
    put.item("message_id", s(&id.to_string()))
        .item("timestamp", n(id.timestamp()))
        .item("sender", s("alice"))
        .item("recipient", s("bob"))
        .item("body", s("stored by hand"))
        .item("client_msg_id", s(&format!("c-{id}")))
        .send()
        .await
        .unwrap();
}

/// A message alice sends bob after the upgrade.
fn message_after_the_upgrade() -> StoredMessage {
    StoredMessage::new(
        MessageId::generate(T0 + 100),
        user("alice"),
        Target::To(user("bob")),
        Body::parse("after the upgrade").unwrap(),
        ClientMsgId::parse("c-new").unwrap(),
    )
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
    let new = message_after_the_upgrade();
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

/// Before the Mailbox table, a message waiting for its recipient's ack carried `inbox` (the key of the Inbox
/// index) and the ack marked the message itself. Those still waiting at the upgrade must reach `sync` with the
/// new ones, in id order, show as undelivered, and be acknowledged the old way, once.
#[tokio::test]
async fn messages_waiting_in_the_old_inbox_index_are_synced_with_the_mailbox_and_acknowledged_once() {
    let stack = TestStack::new(None).await;
    let old = MessageId::generate(T0);
    put_raw_message(&stack, old, true).await;
    let store = stack.store();
    let new = message_after_the_upgrade();
    store.put_message(&new).await.unwrap();
    let inbox = || async {
        let (page, more) = store.inbox(&user("bob"), None, 10).await.unwrap();
        assert!(!more);
        page.into_iter().map(|m| m.id).collect::<Vec<_>>()
    };
    assert_eq!(inbox().await, [old, new.id], "both, oldest first");
    let (first, more) = store.inbox(&user("bob"), None, 1).await.unwrap();
    assert_eq!((first[0].id, more), (old, true), "one page at a time across both");
    let both = [old, new.id];
    assert_eq!(store.undelivered(&user("bob"), &both).await.unwrap().len(), 2);
    // A retry of the old message's send finds it stored: it waits in the old index, so it gets no row.
    let found = store.stored_direct(&old, &user("bob")).await.unwrap();
    assert_eq!(found.map(|f| f.put_back), Some(false));
    assert_eq!(inbox().await, [old, new.id], "still once each");
    let rows = stack
        .dynamo
        .scan()
        .table_name(stack.table("MailboxTable"))
        .send()
        .await
        .unwrap();
    assert_eq!(rows.count(), 1, "only the new message has a row");

    let acked = store.mark_delivered(&user("bob"), &[old], T0 + 500).await.unwrap();
    assert_eq!((acked[0].id, acked[0].delivered_at), (old, T0 + 500));
    assert_eq!(inbox().await, [new.id]);
    assert_eq!(store.undelivered(&user("bob"), &both).await.unwrap().len(), 1);
    let again = store.mark_delivered(&user("bob"), &[old], T0 + 900).await.unwrap();
    assert_eq!(again[0].delivered_at, T0 + 500, "acknowledged once");
}

/// A mailbox row whose message was never stored (the row's put landed, the message's did not, and the client
/// never retried) is skipped, and must neither end a page early nor stall it; and a page that merges the old
/// index must not move past a mailbox message it has not fetched yet. Walked as `sync` walks: each page after
/// the last message of the one before.
#[tokio::test]
async fn mailbox_pages_walk_past_rows_without_a_message_and_across_the_old_index_without_a_gap() {
    let stack = TestStack::new(None).await;
    for i in 1..=2 {
        let row = stack.dynamo.put_item().table_name(stack.table("MailboxTable"));
        row.item("recipient", s("bob"))
            .item("message_id", s(&MessageId::generate(T0 + i).to_string()))
            .item("sender", s("alice"))
            .send()
            .await
            .unwrap();
    }
    let store = stack.store();
    let boxed = StoredMessage::new(
        MessageId::generate(T0 + 10),
        user("alice"),
        Target::To(user("bob")),
        Body::parse("in the mailbox").unwrap(),
        ClientMsgId::parse("c-boxed").unwrap(),
    );
    store.put_message(&boxed).await.unwrap();
    let waiting = MessageId::generate(T0 + 30);
    put_raw_message(&stack, waiting, true).await;

    let (mut seen, mut after) = (Vec::new(), None);
    for _ in 0..10 {
        let (page, more) = store.inbox(&user("bob"), after.as_ref(), 2).await.unwrap();
        seen.extend(page.iter().map(|m| m.id));
        after = page.last().map(|m| m.id).or(after);
        if !more {
            break;
        }
    }
    assert_eq!(seen, [boxed.id, waiting], "every message once, oldest first");
}

/// A one-on-one message stored without its mailbox row (the row's put failed): a retry within the claim's
/// lifetime puts the row; past it, a missing row means "acknowledged long ago", and nothing is put.
#[tokio::test]
async fn a_retry_puts_the_missing_mailbox_row_only_within_the_claims_lifetime() {
    let stack = TestStack::new(None).await;
    let store = stack.store();
    let rows = || async {
        let scan = stack.dynamo.scan().table_name(stack.table("MailboxTable"));
        let items = scan.send().await.unwrap().items.unwrap_or_default();
        items
            .into_iter()
            .map(|i| i["message_id"].as_s().unwrap().clone())
            .collect::<Vec<_>>()
    };
    let (recent, old) = (MessageId::generate(natter_core::now_ms()), MessageId::generate(T0));
    for id in [recent, old] {
        put_raw_message(&stack, id, false).await;
    }
    let store = &store;
    let put_back = |id| async move {
        store
            .stored_direct(&id, &user("bob"))
            .await
            .unwrap()
            .map(|f| f.put_back)
    };
    assert_eq!(
        put_back(recent).await,
        Some(true),
        "a recent message without a row: put back"
    );
    assert_eq!(
        put_back(old).await,
        Some(false),
        "past the claim's lifetime: acknowledged long ago"
    );
    assert_eq!(put_back(recent).await, Some(false), "put back once");
    assert_eq!(rows().await, [recent.to_string()], "only the recent one is put back");
    assert!(
        store
            .stored_direct(&MessageId::generate(T0 + 1), &user("bob"))
            .await
            .unwrap()
            .is_none()
    );
}
