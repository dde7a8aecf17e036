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
