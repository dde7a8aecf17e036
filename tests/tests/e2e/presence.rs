//! Presence over real websockets through natter-local, with its 2 s presence delay: friends are told when a user
//! comes online or goes offline, and nothing when a connection flaps inside the delay.

use natter_tests::{Client, start};
use serde_json::json;
use std::time::Duration;

fn is_presence(v: &serde_json::Value) -> bool {
    v["type"] == "presence"
}

#[tokio::test]
async fn friends_see_online_and_offline_after_the_delay_and_nothing_for_a_flap() {
    let local = start().await;
    let url = local.ws_url.clone();
    let mut alice = Client::connect(&url, "alice").await;
    let mut bob = Client::connect(&url, "bob").await;
    let r = alice
        .request(json!({"action": "friends", "op": "add", "user": "bob"}))
        .await;
    assert_eq!(r["friends"][0]["state"], "requested", "{r}");
    let r = bob
        .request(json!({"action": "friends", "op": "add", "user": "alice"}))
        .await;
    assert_eq!(r["friends"][0]["state"], "friend", "{r}");
    bob.close().await;
    // Wait out the presence events of the set-up connections.
    tokio::time::sleep(Duration::from_secs(3)).await;
    while alice
        .try_wait_for(is_presence, Duration::from_millis(100))
        .await
        .is_some()
    {}

    let bob = Client::connect(&url, "bob").await;
    let started = std::time::Instant::now();
    let p = alice.wait_for("bob online", is_presence).await;
    assert_eq!(
        (p["user"].as_str(), p["status"].as_str()),
        (Some("bob"), Some("online"))
    );
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "after the delay, not at once: {:?}",
        started.elapsed()
    );

    let closed_at = natter_core::now_ms();
    bob.close().await;
    let p = alice.wait_for("bob offline", is_presence).await;
    assert_eq!(p["status"], "offline");
    assert!(p["lastSeen"].as_i64().unwrap() >= closed_at - 1000);

    // Online again, then a disconnect and a reconnect within the delay: one online push, then nothing.
    let bob = Client::connect(&url, "bob").await;
    assert_eq!(alice.wait_for("bob online", is_presence).await["status"], "online");
    bob.close().await;
    let _bob_again = Client::connect(&url, "bob").await;
    assert!(
        alice.try_wait_for(is_presence, Duration::from_secs(4)).await.is_none(),
        "a flap tells no one"
    );
    local.stop().await;
}

/// A message to a friend who is offline is acked with the friend's last seen (it waits for their next `sync`); to
/// a friend online, or to someone who is not a friend, the ack says nothing of the recipient.
#[tokio::test]
async fn the_ack_of_a_message_to_an_offline_friend_says_so_and_never_for_a_stranger() {
    let local = start().await;
    let url = local.ws_url.clone();
    let mut alice = Client::connect(&url, "alice").await;
    let mut bob = Client::connect(&url, "bob").await;
    let mut carol = Client::connect(&url, "carol").await;
    for (c, other) in [(&mut alice, "bob"), (&mut bob, "alice")] {
        c.request(json!({"action": "friends", "op": "add", "user": other}))
            .await;
    }

    let ack = alice.send_message("on-1", "bob", "you are here").await;
    assert!(ack.get("recipient").is_none(), "bob is online: {ack}");

    let closed_at = natter_core::now_ms();
    bob.close().await;
    // `$disconnect` runs after the close: bob is offline once alice's friends list says so.
    alice
        .request_until(json!({"action": "friends", "op": "list"}), "bob offline", |r| {
            r["friends"][0]["status"] == "offline"
        })
        .await;
    let ack = alice.send_message("off-1", "bob", "for later").await;
    assert_eq!(ack["recipient"]["status"], "offline", "{ack}");
    let seen = ack["recipient"]["lastSeen"].as_i64().expect("a last seen");
    assert!(seen >= closed_at - 1000 && seen <= natter_core::now_ms(), "{ack}");

    let ack = carol.send_message("stranger-1", "bob", "hi").await;
    assert!(ack.get("recipient").is_none(), "carol is not bob's friend: {ack}");
    let mut bob = Client::connect(&url, "bob").await;
    let bodies = |page: &serde_json::Value| -> Vec<String> {
        page["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["body"].as_str().map(str::to_owned))
            .collect()
    };
    // The mailbox is an index: under read lag it shows the messages a moment later.
    bob.request_until(json!({"action": "sync"}), "both messages at sync", |p| {
        let b = bodies(p);
        b.iter().any(|x| x == "for later") && b.iter().any(|x| x == "hi")
    })
    .await;
    local.stop().await;
}
