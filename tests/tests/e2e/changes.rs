//! `edit`, `delete` and `react` over real websockets: who may change a message, what everyone who got it is
//! pushed, what history, sync and the previews show afterwards, that retries change nothing twice, and that a
//! deleted body is gone from storage.

use natter_tests::{Client, befriend, scan, start};
use serde_json::{Value, json};
use std::time::Duration;

/// What `c` is answered to `frame`: the error code, or the reply's type (`ok`).
async fn answer(c: &mut Client, frame: Value) -> String {
    let r = c.request(frame).await;
    r["code"].as_str().or(r["type"].as_str()).unwrap_or_default().to_owned()
}

fn of_type<'a>(kind: &'a str, id: &'a Value) -> impl Fn(&Value) -> bool + 'a {
    move |v| v["type"] == kind && v["messageId"] == *id
}

/// The conversation entry of `with` (a user) or of a group in `who`'s first sync page, once `pred` holds.
async fn conversation_until(who: &mut Client, key: &str, name: &Value, pred: impl Fn(&Value) -> bool) -> Value {
    let find = |r: &Value| {
        r["conversations"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c[key] == *name).cloned())
    };
    let reply = who
        .request_until(json!({"action": "sync"}), "the conversation's preview", |r| {
            find(r).as_ref().is_some_and(&pred)
        })
        .await;
    find(&reply).expect("the conversation")
}

/// `who`'s history with `with` once the message `id` shows what `pred` wants (one-on-one history is written a
/// moment after the ack).
async fn in_history(who: &mut Client, with: &str, id: &Value, pred: impl Fn(&Value) -> bool) -> Value {
    let find = |r: &Value| {
        r["messages"]
            .as_array()
            .and_then(|ms| ms.iter().find(|m| m["messageId"] == *id).cloned())
    };
    let reply = who
        .request_until(
            json!({"action": "history", "with": with}),
            "the message in history",
            |r| find(r).as_ref().is_some_and(&pred),
        )
        .await;
    find(&reply).expect("the message")
}

#[tokio::test]
async fn one_on_one_edit_delete_and_reactions_reach_both_sides_and_history() {
    let local = start().await;
    let url = local.ws_url.clone();
    let mut alice = Client::connect(&url, "alice").await;
    let mut alice2 = Client::connect(&url, "alice").await;
    let mut bob = Client::connect(&url, "bob").await;
    let mut carol = Client::connect(&url, "carol").await;
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let id = alice.send_message("e1", "bob", "helo bob").await["messageId"].clone();
    bob.wait_for("the message", of_type("message", &id)).await;

    // Only the sender edits; someone who never got it learns nothing, not even that it exists.
    assert_eq!(
        answer(&mut bob, json!({"action": "edit", "messageId": id, "body": "mine now"})).await,
        "forbidden"
    );
    for frame in [
        json!({"action": "edit", "messageId": id, "body": "x"}),
        json!({"action": "delete", "messageId": id}),
        json!({"action": "react", "messageId": id, "emoji": "👍"}),
    ] {
        let r = carol.request(frame).await;
        assert_eq!(r["code"], "not_found", "{r}");
    }
    assert_eq!(
        answer(
            &mut alice,
            json!({"action": "react", "messageId": id, "emoji": "thumbs"})
        )
        .await,
        "bad_request"
    );

    assert_eq!(
        answer(
            &mut alice,
            json!({"action": "edit", "messageId": id, "body": "hello bob"})
        )
        .await,
        "ok"
    );
    let edit = bob.wait_for("the edit", of_type("edit", &id)).await;
    assert_eq!(edit["body"], "hello bob");
    let edited_at = edit["editedAt"].as_i64().expect("editedAt");
    let mine = alice2
        .wait_for("the edit on the sender's other device", of_type("edit", &id))
        .await;
    assert_eq!(mine["editedAt"], edited_at);
    // A retry: the same answer, the same state (the same editedAt pushed again).
    assert_eq!(
        answer(
            &mut alice,
            json!({"action": "edit", "messageId": id, "body": "hello bob"})
        )
        .await,
        "ok"
    );
    assert_eq!(
        bob.wait_for("the repeat", of_type("edit", &id)).await["editedAt"],
        edited_at
    );

    let h = in_history(&mut bob, "alice", &id, |m| m["body"] == "hello bob").await;
    assert_eq!(h["editedAt"], edited_at, "{h}");
    let c = conversation_until(&mut bob, "with", &json!("alice"), |c| {
        c["last"]["preview"] == "hello bob"
    })
    .await;
    assert_eq!(c["last"]["messageId"], id);

    // Reactions: one per reader, changed and removed; everyone's connections see each, history counts them.
    assert_eq!(
        answer(&mut bob, json!({"action": "react", "messageId": id, "emoji": "👍"})).await,
        "ok"
    );
    for c in [&mut alice, &mut alice2, &mut bob] {
        let p = c.wait_for("bob's reaction", of_type("reaction", &id)).await;
        assert_eq!((&p["by"], &p["emoji"]), (&json!("bob"), &json!("👍")), "{p}");
    }
    assert_eq!(
        answer(&mut alice, json!({"action": "react", "messageId": id, "emoji": "❤️"})).await,
        "ok"
    );
    let h = in_history(&mut bob, "alice", &id, |m| m["reactions"]["❤️"] == 1).await;
    assert_eq!(h["reactions"], json!({"👍": 1, "❤️": 1}));
    assert_eq!(h["myReaction"], "👍");
    assert_eq!(
        answer(&mut bob, json!({"action": "react", "messageId": id, "emoji": "❤️"})).await,
        "ok"
    );
    let h = in_history(&mut alice, "bob", &id, |m| m["reactions"] == json!({"❤️": 2})).await;
    assert_eq!(h["myReaction"], "❤️");
    assert_eq!(
        answer(&mut bob, json!({"action": "react", "messageId": id, "emoji": ""})).await,
        "ok"
    );
    let removed = alice
        .wait_for("the removal", |v| v["type"] == "reaction" && v["emoji"] == "")
        .await;
    assert_eq!(removed["by"], "bob");
    let h = in_history(&mut bob, "alice", &id, |m| m["reactions"] == json!({"❤️": 1})).await;
    assert!(h.get("myReaction").is_none(), "{h}");

    // Delete for everyone at once after sending, before the conversation is indexed: the preview must not keep
    // the body the indexing job carries.
    let gone = alice.send_message("e2", "bob", "the secret").await["messageId"].clone();
    assert_eq!(
        answer(&mut alice, json!({"action": "delete", "messageId": gone})).await,
        "ok"
    );
    bob.wait_for("the delete", of_type("delete", &gone)).await;
    alice2
        .wait_for("the delete on the other device", of_type("delete", &gone))
        .await;
    let r = alice.request(json!({"action": "delete", "messageId": gone})).await;
    assert_eq!(r["type"], "ok", "a retry: {r}");
    for (frame, code) in [
        (
            json!({"action": "edit", "messageId": gone, "body": "back"}),
            "forbidden",
        ),
        (
            json!({"action": "react", "messageId": gone, "emoji": "👍"}),
            "forbidden",
        ),
    ] {
        let r = bob.request(frame.clone()).await;
        assert_eq!(r["code"], code, "{frame}: {r}");
    }
    let h = in_history(&mut bob, "alice", &gone, |m| m["deleted"] == true).await;
    assert!(h.get("body").is_none(), "{h}");
    let c = conversation_until(&mut bob, "with", &json!("alice"), |c| c["last"]["messageId"] == gone).await;
    // Give the indexing every chance to write the preview it carries, then look again.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let c2 = conversation_until(&mut bob, "with", &json!("alice"), |_| true).await;
    for c in [c, c2] {
        assert_eq!(c["last"]["deleted"], true, "{c}");
        assert!(c["last"].get("preview").is_none(), "{c}");
    }
    let a = conversation_until(&mut alice, "with", &json!("bob"), |c| c["last"]["deleted"] == true).await;
    assert!(a["last"].get("preview").is_none(), "{a}");
    // The unacknowledged message (this client never acks) reaches a sync as its tombstone.
    let listed = |r: &Value| {
        r["messages"]
            .as_array()
            .and_then(|ms| ms.iter().find(|m| m["messageId"] == gone).cloned())
    };
    let s = bob
        .request_until(json!({"action": "sync"}), "the tombstone in sync", |r| {
            listed(r).is_some()
        })
        .await;
    let t = listed(&s).expect("the tombstone");
    assert!(t["deleted"] == true && t.get("body").is_none(), "{t}");
    // Gone from storage, not hidden.
    let stored = scan(&local, "MessagesTable").await;
    let item = stored
        .iter()
        .find(|i| i.get("message_id").and_then(|v| v.as_s().ok()).map(String::as_str) == gone.as_str())
        .expect("the tombstone");
    assert!(!item.contains_key("body"), "{item:?}");
    assert!(
        !format!("{stored:?}").contains("the secret"),
        "no item holds the deleted body"
    );
}

#[tokio::test]
async fn group_changes_reach_the_members_who_got_the_message_and_no_one_else() {
    let local = start().await;
    let url = local.ws_url.clone();
    let mut alice = Client::connect(&url, "alice").await;
    let mut bob = Client::connect(&url, "bob").await;
    let mut dave = Client::connect(&url, "dave").await;
    befriend(&mut alice, &mut bob).await;
    befriend(&mut alice, &mut dave).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let g = alice
        .request(json!({"action": "group", "op": "create", "name": "team", "members": ["bob"]}))
        .await["group"]["id"]
        .clone();
    let ack = alice
        .request(json!({"action": "send", "clientMsgId": "g1", "group": g, "body": "meeting at 3"}))
        .await;
    let id = ack["messageId"].clone();
    bob.wait_for("the group message", of_type("message", &id)).await;
    // dave joins after the message: it is not his to see, change or react to.
    let added = alice
        .request(json!({"action": "group", "op": "add", "group": g, "user": "dave"}))
        .await;
    assert_eq!(added["type"], "group", "{added}");
    assert_eq!(
        answer(&mut dave, json!({"action": "react", "messageId": id, "emoji": "👍"})).await,
        "not_found"
    );

    assert_eq!(
        answer(&mut bob, json!({"action": "edit", "messageId": id, "body": "mine"})).await,
        "forbidden"
    );
    assert_eq!(
        answer(
            &mut alice,
            json!({"action": "edit", "messageId": id, "body": "meeting at 4"})
        )
        .await,
        "ok"
    );
    assert_eq!(
        bob.wait_for("the edit", of_type("edit", &id)).await["body"],
        "meeting at 4"
    );
    let c = conversation_until(&mut bob, "group", &g, |c| c["last"]["preview"] == "meeting at 4").await;
    assert_eq!(c["last"]["messageId"], id);

    assert_eq!(
        answer(&mut bob, json!({"action": "react", "messageId": id, "emoji": "👍"})).await,
        "ok"
    );
    let p = alice.wait_for("bob's reaction", of_type("reaction", &id)).await;
    assert_eq!(p["by"], "bob");
    let h = alice.request(json!({"action": "history", "group": g})).await;
    let m = h["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["messageId"] == id)
        .cloned()
        .unwrap();
    assert_eq!(
        (&m["body"], &m["reactions"]),
        (&json!("meeting at 4"), &json!({"👍": 1})),
        "{m}"
    );

    assert_eq!(
        answer(&mut alice, json!({"action": "delete", "messageId": id})).await,
        "ok"
    );
    bob.wait_for("the delete", of_type("delete", &id)).await;
    let c = conversation_until(&mut bob, "group", &g, |c| c["last"]["deleted"] == true).await;
    assert!(c["last"].get("preview").is_none(), "{c}");
    let h = bob.request(json!({"action": "history", "group": g})).await;
    let m = h["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["messageId"] == id)
        .cloned()
        .unwrap();
    assert!(m.get("body").is_none() && m.get("reactions").is_none(), "{m}");
    // Nothing of it reached dave, who joined after.
    let leaked = dave
        .try_wait_for(|v| v["messageId"] == id, Duration::from_millis(800))
        .await;
    assert!(leaked.is_none(), "{leaked:?}");
}
