//! Consent for groups over real websockets: a stranger can only invite; the invited user joins or declines by
//! itself, sees nothing of the group until it joins and nothing from before; a blocker is never told; and the
//! limits on groups per user and creates per hour hold.

use natter_tests::{Client, befriend};
use serde_json::{Value, json};
use std::time::Duration;

async fn group_op(c: &mut Client, frame: Value) -> Value {
    let mut frame = frame;
    frame["action"] = "group".into();
    c.request(frame).await
}

async fn create(c: &mut Client, name: &str, members: &[&str]) -> Value {
    let r = group_op(c, json!({"op": "create", "name": name, "members": members})).await;
    assert_eq!(r["type"], "group", "{r}");
    r["group"].clone()
}

fn invited_groups(reply: &Value) -> Vec<String> {
    assert_eq!(reply["type"], "invites", "{reply}");
    reply["invites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["group"]["id"].as_str().unwrap().to_owned())
        .collect()
}

fn bodies(reply: &Value) -> Vec<String> {
    reply["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["body"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn a_stranger_only_invites_and_the_invited_user_joins_or_declines_by_itself() {
    let (mut opts, _logs) = natter_tests::options();
    opts.parameters.insert("GroupCreatesPerHour".into(), "1".into());
    opts.parameters.insert("MaxGroupsPerUser".into(), "2".into());
    let local = natter_local::local::Local::start(opts).await.expect("natter-local");
    let url = local.ws_url.clone();
    let mut mallory = Client::connect(&url, "mallory").await;
    let mut target = Client::connect(&url, "target").await;
    let mut ann = Client::connect(&url, "ann").await;
    let mut eve = Client::connect(&url, "eve").await;

    // A stranger names the target: the target is invited, not a member, and sees nothing of the group.
    let g1 = create(&mut mallory, "🦀 club", &["target"]).await;
    assert_eq!(
        (&g1["members"], &g1["invited"]),
        (&json!(["mallory"]), &json!(["target"]))
    );
    let g1 = g1["id"].as_str().unwrap().to_owned();
    let push = target.wait_for("the invitation", |v| v["type"] == "invite").await;
    assert_eq!(
        push,
        json!({"type": "invite", "group": {"id": g1, "name": "🦀 club"}, "by": "mallory"})
    );
    let before = mallory
        .request(json!({"action": "send", "clientMsgId": "b-1", "group": g1, "body": "before you joined"}))
        .await;
    assert_eq!(before["seq"], 1, "{before}");
    assert!(
        target.messages_within(Duration::from_millis(700)).await.is_empty(),
        "no message to the invited"
    );
    let list = group_op(&mut target, json!({"op": "list"})).await;
    assert_eq!(list["groups"], json!([]), "{list}");
    for frame in [
        json!({"action": "history", "group": g1}),
        json!({"action": "group", "op": "members", "group": g1}),
    ] {
        assert_eq!(target.request(frame).await["code"], "forbidden");
    }
    assert_eq!(
        invited_groups(&group_op(&mut target, json!({"op": "invites"})).await),
        std::slice::from_ref(&g1)
    );
    let unasked = group_op(&mut eve, json!({"op": "join", "group": g1})).await;
    assert_eq!(unasked["code"], "forbidden", "a join without an invitation");

    // A friend's group takes the target in at once.
    befriend(&mut ann, &mut target).await;
    let g2 = create(&mut ann, "hikers", &["target"]).await;
    assert_eq!(
        (&g2["members"], &g2["invited"]),
        (&json!(["ann", "target"]), &json!([]))
    );

    // The target joins: a member from now on, nothing from before.
    let joined = group_op(&mut target, json!({"op": "join", "group": g1})).await;
    assert_eq!(joined["group"]["members"], json!(["mallory", "target"]), "{joined}");
    assert!(invited_groups(&group_op(&mut target, json!({"op": "invites"})).await).is_empty());
    mallory
        .request(json!({"action": "send", "clientMsgId": "b-2", "group": g1, "body": "welcome"}))
        .await;
    let m = target
        .wait_for("the first message after joining", |v| v["type"] == "message")
        .await;
    assert_eq!(m["body"], "welcome");
    let history = target.request(json!({"action": "history", "group": g1})).await;
    assert_eq!(bodies(&history), ["welcome"], "{history}");

    // A third group is one more than the target may be in; it declines that invitation. (The count reads the
    // memberships' index, which lags a join by a moment: wait until the target's own list shows both.)
    let g3 = create(&mut eve, "third", &["target"]).await["id"].clone();
    target
        .wait_for("the second invitation", |v| v["type"] == "invite")
        .await;
    target
        .request_until(json!({"action": "group", "op": "list"}), "both groups", |r| {
            r["groups"].as_array().is_some_and(|g| g.len() == 2)
        })
        .await;
    let full = group_op(&mut target, json!({"op": "join", "group": g3})).await;
    assert_eq!(full["code"], "forbidden", "{full}");
    let declined = group_op(&mut target, json!({"op": "decline", "group": g3})).await;
    assert!(invited_groups(&declined).is_empty(), "{declined}");
    let gone = group_op(&mut target, json!({"op": "join", "group": g3})).await;
    assert_eq!(gone["code"], "forbidden", "declined: no invitation left");

    // One create an hour here (20 by default): eve's second is refused.
    let over = group_op(&mut eve, json!({"op": "create", "name": "fourth", "members": []})).await;
    assert_eq!(over["code"], "forbidden", "{over}");

    // A user who blocked the creator is listed as invited to it and told nothing.
    let mut spammer = Client::connect(&url, "spammer").await;
    target
        .request(json!({"action": "friends", "op": "block", "user": "spammer"}))
        .await;
    let g = create(&mut spammer, "spam", &["target"]).await;
    assert_eq!(g["invited"], json!(["target"]), "nothing reveals the block");
    assert!(
        target
            .try_wait_for(|v| v["type"] == "invite", Duration::from_millis(700))
            .await
            .is_none()
    );
    assert!(invited_groups(&group_op(&mut target, json!({"op": "invites"})).await).is_empty());
    local.stop().await;
}
