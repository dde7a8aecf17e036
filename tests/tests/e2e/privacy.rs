//! What a member added to a group may see of the time before it joined: nothing. Not through a cursor it makes
//! itself, not in its conversation list's preview, not pushed by a fan-out that runs after it joined.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use natter_tests::{Client, befriend};
use serde_json::{Value, json};
use std::time::Duration;

fn bodies(reply: &Value) -> Vec<String> {
    reply["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("no messages in {reply}"))
        .iter()
        .filter_map(|m| m["body"].as_str().map(str::to_owned))
        .collect()
}

/// The list a `friends` op answers.
async fn friends(c: &mut Client, op: &str, user: &str) -> Value {
    let r = c.request(json!({"action": "friends", "op": op, "user": user})).await;
    assert_eq!(r["type"], "friends", "{r}");
    r["friends"].clone()
}

/// carol is added after four messages, the fourth's fan-out job delivered again after she joined: she is pushed none of
/// them, her conversation list shows no preview of them, and a cursor she writes herself (the group from sequence 0)
/// or a `before` she writes for history is a `bad_request`, where it used to read the group from its start.
#[tokio::test]
async fn a_member_added_later_sees_nothing_from_before_it_joined_whatever_it_sends() {
    let local = natter_tests::start().await;
    let mut alice = Client::connect(&local.ws_url, "alice").await;
    let mut bob = Client::connect(&local.ws_url, "bob").await;
    let mut carol = Client::connect(&local.ws_url, "carol").await;
    befriend(&mut alice, &mut bob).await;
    befriend(&mut alice, &mut carol).await;
    let created = alice
        .request(json!({"action": "group", "op": "create", "name": "plans", "members": ["bob"]}))
        .await;
    let group = created["group"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_owned();
    for (i, body) in ["one", "two", "three"].iter().enumerate() {
        let ack = alice
            .request(json!({"action": "send", "clientMsgId": format!("p-{i}"), "group": group, "body": body}))
            .await;
        assert_eq!(ack["type"], "ack", "{ack}");
    }

    // The fourth message, and then its fan-out job once more after carol has joined: SQS delivers at least once,
    // and a job can wait in the queue (a retry, a backlog) while the group changes.
    let ack = alice
        .request(json!({"action": "send", "clientMsgId": "p-4", "group": group, "body": "four, before carol"}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let pushed = bob
        .wait_for("the fourth message", |v| v["type"] == "message" && v["seq"] == 4)
        .await;
    let added = alice
        .request(json!({"action": "group", "op": "add", "group": group, "user": "carol"}))
        .await;
    assert_eq!(added["type"], "group", "{added}");
    let job = natter_core::jobs::Job::Fanout(natter_core::jobs::FanoutJob {
        message: serde_json::from_value(pushed).expect("a message push"),
        exclude: None,
        members: None,
        change: None,
    });
    let sdk = natter_local::emulator::sdk_for(local.emulator.as_deref().unwrap()).await;
    aws_sdk_sqs::Client::new(&sdk)
        .send_message()
        .queue_url(local.stack.queue_url("FanoutQueue").unwrap())
        .message_body(job.to_json())
        .send()
        .await
        .unwrap();
    // The redelivered job ran: alice's own connection is pushed her message (and drops the repeat by id).
    let mine = alice
        .try_wait_for(|v| v["type"] == "message" && v["seq"] == 4, Duration::from_secs(5))
        .await;
    let pushed = carol.messages_within(Duration::from_secs(2)).await;
    assert!(
        pushed.is_empty(),
        "carol was pushed a message from before she joined: {pushed:?}"
    );
    assert!(mine.is_some(), "the redelivered fan-out never ran");

    // Her sync: the group is listed, with nothing unread and no preview of what was said before.
    // (The list of a user's groups is read from an index that may lag the join by a moment.)
    let in_list = |sync: &Value| {
        sync["conversations"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["group"] == group.as_str()).cloned())
    };
    let sync = carol
        .request_until(json!({"action": "sync"}), "the group in carol's list", |s| {
            in_list(s).is_some()
        })
        .await;
    assert!(bodies(&sync).is_empty(), "{sync}");
    let listed = in_list(&sync).unwrap();
    assert_eq!(listed["unread"], 0, "{listed}");
    assert!(
        listed.get("last").is_none_or(Value::is_null),
        "a preview from before she joined: {listed}"
    );

    // The cursor an unsealed server would have taken: the group from sequence 0 to 4.
    let made_up = json!({"v": 1, "inbox_done": true, "groups": [[group, 0, 4]]}).to_string();
    for cursor in [
        B64.encode(&made_up),
        format!("{}.AAAAAAAAAAAAAAAAAAAAAA", B64.encode(&made_up)),
    ] {
        let r = carol.request(json!({"action": "sync", "cursor": cursor})).await;
        assert_eq!(r["code"], "bad_request", "{r}");
    }
    let r = carol
        .request(json!({"action": "history", "group": group, "before": "5"}))
        .await;
    assert_eq!(r["code"], "bad_request", "{r}");
    let history = carol.request(json!({"action": "history", "group": group})).await;
    assert!(bodies(&history).is_empty(), "{history}");

    // What comes after she joined reaches her, and bob's cursors are his alone.
    alice
        .request(json!({"action": "send", "clientMsgId": "p-5", "group": group, "body": "welcome carol"}))
        .await;
    let welcome = carol
        .wait_for("the message after she joined", |v| v["type"] == "message")
        .await;
    assert_eq!(welcome["body"], "welcome carol");
    let page = bob
        .request(json!({"action": "history", "group": group, "limit": 1}))
        .await;
    let bobs = page["next"].as_str().unwrap_or_else(|| panic!("{page}")).to_owned();
    let older = bob
        .request(json!({"action": "history", "group": group, "limit": 1, "before": bobs}))
        .await;
    assert_eq!(
        bodies(&older),
        ["four, before carol"],
        "bob pages back with his own cursor"
    );
    let r = carol
        .request(json!({"action": "history", "group": group, "before": bobs}))
        .await;
    assert_eq!(r["code"], "bad_request", "another user's cursor: {r}");
    local.stop().await;
}

/// eve knows alice's id. Before, `friends add` alone showed her alice's status, last seen and every change. Now
/// it is a request: eve sees `requested` and nothing else until alice accepts; alice declines by blocking, and
/// from then on eve's messages and requests are acked as usual and never reach alice, and nothing tells eve so.
#[tokio::test]
async fn a_stranger_learns_nothing_of_a_user_who_did_not_accept_it() {
    let local = natter_tests::start().await;
    let mut alice = Client::connect(&local.ws_url, "alice").await;
    let mut eve = Client::connect(&local.ws_url, "eve").await;
    let only_requested = json!([{"user": "alice", "state": "requested"}]);
    assert_eq!(friends(&mut eve, "add", "alice").await, only_requested, "no status");
    let told = alice.wait_for("the request", |v| v["type"] == "friend").await;
    assert_eq!(
        (told["user"].as_str(), told["state"].as_str()),
        (Some("eve"), Some("incoming"))
    );

    // alice goes offline for longer than the presence delay and comes back: eve is told nothing.
    alice.close().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut alice = Client::connect(&local.ws_url, "alice").await;
    let presence = eve
        .try_wait_for(|v| v["type"] == "presence", Duration::from_secs(4))
        .await;
    assert!(presence.is_none(), "a stranger was told alice's presence: {presence:?}");

    let blocked = friends(&mut alice, "block", "eve").await;
    assert_eq!(blocked, json!([{"user": "eve", "state": "blocked"}]));
    let ack = eve.send_message("e-1", "alice", "let me in").await;
    assert!(ack["messageId"].is_string(), "acked as usual: {ack}");
    assert_eq!(
        friends(&mut eve, "add", "alice").await,
        only_requested,
        "the block is not revealed"
    );
    let got = alice.messages_within(Duration::from_secs(2)).await;
    assert!(got.is_empty(), "{got:?}");
    let sync = alice.request(json!({"action": "sync"})).await;
    assert!(bodies(&sync).is_empty(), "{sync}");
    assert!(
        alice
            .try_wait_for(|v| v["type"] == "friend", Duration::from_millis(500))
            .await
            .is_none(),
        "no request reached alice after the block"
    );
    local.stop().await;
}
