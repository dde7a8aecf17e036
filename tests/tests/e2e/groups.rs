//! Group chat over real websockets through natter-local: the server sequence, the SQS fan-out to every online
//! device, removal, and batched acks and reads.

use natter_tests::{Client, befriend, start};
use serde_json::{Value, json};
use std::time::Duration;

async fn create(c: &mut Client, members: &[&str]) -> String {
    let r = c
        .request(json!({"action": "group", "op": "create", "name": "Hikers", "members": members}))
        .await;
    assert_eq!(r["type"], "group", "{r}");
    r["group"]["id"].as_str().unwrap().to_owned()
}

async fn group_send(c: &mut Client, cmid: &str, group: &str, body: &str) -> Value {
    let r = c
        .request(json!({"action": "send", "clientMsgId": cmid, "group": group, "body": body}))
        .await;
    assert_eq!(r["type"], "ack", "{r}");
    r
}

#[tokio::test]
async fn a_group_message_reaches_every_online_device_with_one_sequence() {
    let local = start().await;
    let url = local.ws_url.clone();
    // Five members; ann and ben online on two devices each, the others offline (but registered).
    for u in ["cat", "dan", "eve"] {
        Client::connect(&url, u).await.close().await;
    }
    let (mut a1, mut a2) = (Client::connect(&url, "ann").await, Client::connect(&url, "ann").await);
    let (mut b1, mut b2) = (Client::connect(&url, "ben").await, Client::connect(&url, "ben").await);
    // ben, ann's friend, joins at once; the others are only invited.
    befriend(&mut a1, &mut b1).await;
    let g = create(&mut a1, &["ben", "cat", "dan", "eve"]).await;

    let ack = group_send(&mut a1, "g-1", &g, "summit at noon").await;
    assert_eq!(ack["seq"], 1);
    for c in [&mut a2, &mut b1, &mut b2] {
        let m = c.wait_for("the group message", |v| v["type"] == "message").await;
        assert_eq!(
            (m["group"].as_str(), m["seq"].as_u64(), m["from"].as_str()),
            (Some(g.as_str()), Some(1), Some("ann"))
        );
        assert_eq!(m["messageId"], ack["messageId"]);
    }
    assert!(
        a1.messages_within(Duration::from_millis(500)).await.is_empty(),
        "not to the sending connection"
    );
    // A retry (the ack was lost) gets the same ack, found by the message's history row, and pushes nothing.
    let retry = group_send(&mut a1, "g-1", &g, "summit at noon").await;
    assert_eq!((&retry["messageId"], &retry["seq"]), (&ack["messageId"], &ack["seq"]));
    assert!(
        b1.messages_within(Duration::from_millis(500)).await.is_empty(),
        "the retry is not pushed again"
    );

    // The server orders the group: consecutive sequences, whoever sends.
    let second = group_send(&mut b1, "g-2", &g, "bring water").await;
    assert_eq!(second["seq"], 2);
    let m = a1.wait_for("ben's message", |v| v["type"] == "message").await;
    assert_eq!(m["seq"], 2);
    local.stop().await;
}

#[tokio::test]
async fn a_removed_member_stops_receiving_and_marks_move_forward_only() {
    let local = start().await;
    let mut ann = Client::connect(&local.ws_url, "ann").await;
    let mut ben = Client::connect(&local.ws_url, "ben").await;
    let mut cat = Client::connect(&local.ws_url, "cat").await;
    befriend(&mut ann, &mut ben).await;
    befriend(&mut ann, &mut cat).await;
    let g = create(&mut ann, &["ben", "cat"]).await;
    group_send(&mut ann, "g-1", &g, "one").await;
    group_send(&mut ann, "g-2", &g, "two").await;
    // cat connected a moment before: under read lag the fan-out may not see her connection yet, and her sync's
    // catch-up (2 s after it) brings the two messages instead.
    assert_eq!(cat.messages_within(Duration::from_secs(5)).await.len(), 2);

    let r = ann
        .request(json!({"action": "group", "op": "remove", "group": g, "user": "cat"}))
        .await;
    assert_eq!(r["group"]["members"], json!(["ann", "ben"]));
    group_send(&mut ann, "g-3", &g, "three").await;
    assert_eq!(ben.messages_within(Duration::from_secs(2)).await.len(), 3);
    assert!(
        cat.messages_within(Duration::from_millis(700)).await.is_empty(),
        "removed"
    );
    let r = cat
        .request(json!({"action": "send", "clientMsgId": "c-1", "group": g, "body": "hello?"}))
        .await;
    assert_eq!(r["code"], "forbidden");

    assert_eq!(first_group(&mut ben).await["unread"], 3);
    assert_eq!(
        ben.request(json!({"action": "read", "group": g, "upToSeq": 2})).await["type"],
        "ok"
    );
    assert_eq!(first_group(&mut ben).await["unread"], 1);
    ben.request(json!({"action": "read", "group": g, "upToSeq": 1})).await;
    assert_eq!(first_group(&mut ben).await["unread"], 1, "a read mark never moves back");
    assert_eq!(
        ben.request(json!({"action": "ack", "group": g, "upToSeq": 3})).await["type"],
        "ok"
    );
    assert_eq!(
        ben.request(json!({"action": "ack", "group": g, "upToSeq": 4})).await["code"],
        "bad_request"
    );
    local.stop().await;
}

async fn first_group(c: &mut Client) -> Value {
    c.request(json!({"action": "group", "op": "list"})).await["groups"][0].clone()
}

/// Walks every page of `c`'s group list; the ids in order, and the largest page's size in bytes.
async fn all_groups(c: &mut Client) -> (Vec<String>, usize) {
    let (mut ids, mut largest, mut cursor) = (Vec::new(), 0, None::<String>);
    loop {
        let mut frame = json!({"action": "group", "op": "list"});
        if let Some(c) = &cursor {
            frame["cursor"] = c.clone().into();
        }
        let page = c.request(frame).await;
        assert_eq!(page["type"], "groups", "{page}");
        largest = largest.max(page.to_string().len());
        let groups = page["groups"].as_array().unwrap();
        assert!(groups.len() <= 100, "at most 100 groups a page");
        ids.extend(groups.iter().map(|g| g["id"].as_str().unwrap().to_owned()));
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return (ids, largest),
        }
    }
}

/// One account put a user in 320 groups with 100-emoji names: the user's `group list` was one 150 KB reply, which
/// API Gateway (and natter-local) never delivers, so the user could not list its groups at all. A stranger can no
/// longer do that (it only invites, see `a_stranger_only_invites`); a friend still can, and the list pages.
#[tokio::test]
async fn a_user_in_hundreds_of_groups_with_long_names_lists_them_page_by_page() {
    let (mut opts, _logs) = natter_tests::options();
    // Creating 320 groups quickly is the point; the rate limits have their own tests.
    opts.parameters.insert("FrameRateLimit".into(), "0".into());
    opts.parameters.insert("GroupCreatesPerHour".into(), "0".into());
    let local = natter_local::local::Local::start(opts).await.expect("natter-local");
    let mut mallory = Client::connect_raw(&local.ws_url, "mallory").await;
    let mut target = Client::connect_raw(&local.ws_url, "target").await;
    befriend(&mut mallory, &mut target).await;
    let name = "🦀".repeat(100);
    let mut created = Vec::new();
    for _ in 0..320 {
        let r = mallory
            .request(json!({"action": "group", "op": "create", "name": name, "members": ["target"]}))
            .await;
        created.push(r["group"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned());
    }
    created.sort();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let (ids, largest) = loop {
        // The list reads an index that may lag the creates by a moment.
        let (ids, largest) = all_groups(&mut target).await;
        if ids.len() >= created.len() || tokio::time::Instant::now() > deadline {
            break (ids, largest);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(ids, created, "every group once, in id order");
    assert!(largest <= 128 * 1024, "a page of {largest} bytes");
    let forged = target
        .request(json!({"action": "group", "op": "list", "cursor": created[100]}))
        .await;
    assert_eq!(forged["code"], "bad_request", "{forged}");
    local.stop().await;
}
