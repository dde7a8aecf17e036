//! API Gateway's outbound and account limits, as natter-local enforces them: a message over 128 KB is never
//! delivered (a route response is dropped, a `@connections` post gets 413), and, when set, the account's new
//! connections per second and `@connections` requests per second (429 beyond).

use aws_sdk_apigatewaymanagement::config::{Credentials, Region};
use natter_local::gateway::AccountLimits;
use natter_tests::{Client, options};
use serde_json::json;
use std::{collections::HashMap, time::Duration};

/// A management client that does not retry, so every refusal is seen.
async fn management(url: &str) -> aws_sdk_apigatewaymanagement::Client {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("x", "x", None, None, "test"))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .endpoint_url(url)
        .load()
        .await;
    aws_sdk_apigatewaymanagement::Client::new(&sdk)
}

async fn connection_id(local: &natter_local::local::Local) -> String {
    natter_tests::connection_ids(local).await.remove(0)
}

#[tokio::test]
async fn a_message_over_128_kb_is_never_delivered_whether_route_response_or_post() {
    let (mut o, _) = options();
    let faulty = natter_local::process::workspace_root().join("target/debug/natter-faulty");
    o.binaries = HashMap::from([("DefaultFunction".to_owned(), faulty)]);
    let local = natter_local::local::Local::start(o).await.unwrap();
    let mut c = Client::connect(&local.ws_url, "alice").await;

    c.send(json!({"action": "please-huge", "requestId": "big"})).await;
    let reply = c
        .try_wait_for(|v| v["requestId"] == "big", Duration::from_secs(2))
        .await;
    assert!(reply.is_none(), "a 200 KB route response is not delivered");
    assert_eq!(local.gateway.stats()["undeliveredOver128Kb"], 1);
    assert_eq!(
        c.request(json!({"action": "still-there"})).await["type"],
        "echo",
        "the connection stays"
    );

    let api = management(&local.management_url).await;
    let id = connection_id(&local).await;
    let e = api
        .post_to_connection()
        .connection_id(&id)
        .data(vec![b'x'; 128 * 1024 + 1].into())
        .send()
        .await
        .unwrap_err();
    assert!(
        e.as_service_error().is_some_and(|x| x.is_payload_too_large_exception()),
        "{e:?}"
    );
    assert!(
        c.try_wait_for(|v| v.is_string(), Duration::from_millis(500))
            .await
            .is_none()
    );
    local.stop().await;
}

#[tokio::test]
async fn the_accounts_connection_and_management_rates_are_enforced_when_set() {
    let (mut o, _) = options();
    o.limits = AccountLimits {
        connects_per_sec: Some(3.0),
        management_per_sec: Some(5.0),
    };
    let local = natter_local::local::Local::start(o).await.unwrap();
    // At once, so the bucket does not refill in between (each upgrade runs the authorizer and $connect).
    let outcomes: Vec<Option<u16>> = futures::future::join_all((0..8).map(|i| {
        let (url, user) = (local.ws_url.clone(), format!("u{i}"));
        async move {
            Client::connect_with(&url, &user, &natter_tests::token(&user))
                .await
                .err()
        }
    }))
    .await;
    let refused = outcomes.iter().filter(|o| **o == Some(429)).count();
    assert!(
        (4..=5).contains(&refused),
        "3 a second, bursts of 3: of 8 quick upgrades some are refused with 429: {outcomes:?}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut c = Client::connect_raw(&local.ws_url, "later").await;

    let api = management(&local.management_url).await;
    let ids = natter_tests::scan(&local, "ConnectionsTable").await;
    let id = ids
        .iter()
        .find(|i| i["user_id"].as_s().map(String::as_str) == Ok("later"))
        .unwrap()["connection_id"]
        .as_s()
        .unwrap()
        .clone();
    let mut throttled = 0;
    for _ in 0..10 {
        let r = api
            .post_to_connection()
            .connection_id(&id)
            .data(b"{}".as_slice().into())
            .send()
            .await;
        if let Err(e) = r {
            assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(429), "{e:?}");
            throttled += 1;
        }
    }
    assert!(
        throttled >= 4,
        "10 posts at once against 5 a second: {throttled} throttled"
    );
    assert!(
        c.try_wait_for(|v| v == &json!({}), Duration::from_secs(2))
            .await
            .is_some()
    );
    local.stop().await;
}
