//! natter-local's API Gateway behaviours over real websockets: the authorizer at the upgrade, route responses,
//! $default, frame limits, the @connections API, idle timeout, SQS retries into the DLQ, and failing functions.

use aws_sdk_apigatewaymanagement::config::{Credentials, Region};
use natter_core::auth::sign;
use natter_tests::{Client, WAIT, options, start, token};
use serde_json::json;
use std::{collections::HashMap, time::Duration};

#[tokio::test]
async fn the_authorizer_refuses_bad_tokens_at_the_upgrade() {
    let local = start().await;
    let secret = natter_local::local::dev_secret();
    let now = natter_core::now_ms() as u64 / 1000;
    assert_eq!(
        Client::connect_with(&local.ws_url, "x", "").await.err(),
        Some(401),
        "missing token"
    );
    assert_eq!(
        Client::connect_with(&local.ws_url, "x", "garbage").await.err(),
        Some(403)
    );
    let expired = sign(secret.as_bytes(), &json!({"sub": "alice", "exp": now - 600}));
    assert_eq!(
        Client::connect_with(&local.ws_url, "x", &expired).await.err(),
        Some(403)
    );
    let forged = sign(
        b"not-the-secret-not-the-secret-not-the",
        &json!({"sub": "alice", "exp": now + 600}),
    );
    assert_eq!(Client::connect_with(&local.ws_url, "x", &forged).await.err(), Some(403));
    assert!(
        Client::connect_with(&local.ws_url, "alice", &token("alice"))
            .await
            .is_ok()
    );
    local.stop().await;
}

#[tokio::test]
async fn unknown_actions_and_malformed_frames_get_error_frames_from_default() {
    let local = start().await;
    let mut c = Client::connect_raw(&local.ws_url, "alice").await;
    let r = c.request(json!({"action": "dance"})).await;
    assert_eq!(
        (r["type"].as_str(), r["code"].as_str()),
        (Some("error"), Some("unknown_action"))
    );
    c.send_text("{oops".into()).await;
    let r = c.wait_for("an error", |v| v["type"] == "error").await;
    assert_eq!(r["code"], "bad_request");
    local.stop().await;
}

#[tokio::test]
async fn a_frame_over_32_kb_closes_the_connection_with_1009() {
    let local = start().await;
    let mut c = Client::connect_raw(&local.ws_url, "alice").await;
    c.send_text(format!(r#"{{"action":"send","body":"{}"}}"#, "x".repeat(33 * 1024)))
        .await;
    assert_eq!(c.closed_within(WAIT).await, Some(1009));
    local.stop().await;
}

async fn management(url: &str) -> aws_sdk_apigatewaymanagement::Client {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("x", "x", None, None, "test"))
        .endpoint_url(url)
        .load()
        .await;
    aws_sdk_apigatewaymanagement::Client::new(&sdk)
}

#[tokio::test]
async fn connections_can_be_read_posted_to_and_deleted_and_unknown_ones_are_gone() {
    let local = start().await;
    let mut c = Client::connect_raw(&local.ws_url, "alice").await;
    // The connection id is only known to the server side; find it in the registry.
    let id = natter_tests::connection_ids(&local).await.remove(0);
    let api = management(&local.management_url).await;

    let got = api.get_connection().connection_id(&id).send().await.unwrap();
    assert_eq!(got.identity().and_then(|i| i.source_ip()), Some("127.0.0.1"));
    assert!(got.connected_at().is_some() && got.last_active_at().is_some());

    api.post_to_connection()
        .connection_id(&id)
        .data(r#"{"type":"hello"}"#.as_bytes().into())
        .send()
        .await
        .unwrap();
    assert_eq!(
        c.wait_for("the posted frame", |v| v["type"] == "hello").await["type"],
        "hello"
    );

    api.delete_connection().connection_id(&id).send().await.unwrap();
    assert!(c.closed_within(WAIT).await.is_some());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let e = api
        .post_to_connection()
        .connection_id(&id)
        .data(b"x".as_slice().into())
        .send()
        .await
        .unwrap_err();
    assert!(e.as_service_error().is_some_and(|x| x.is_gone_exception()), "{e:?}");
    let e = api
        .get_connection()
        .connection_id("never-existed=")
        .send()
        .await
        .unwrap_err();
    assert!(e.as_service_error().is_some_and(|x| x.is_gone_exception()));
    // $disconnect ran: the registry no longer has the connection.
    let left = natter_tests::scan(&local, "ConnectionsTable").await;
    assert!(left.is_empty(), "{left:?}");
    local.stop().await;
}

#[tokio::test]
async fn an_idle_connection_is_closed() {
    let (mut o, _) = options();
    o.idle_timeout = Duration::from_millis(700);
    let local = natter_local::local::Local::start(o).await.unwrap();
    let mut c = Client::connect_raw(&local.ws_url, "alice").await;
    assert_eq!(c.closed_within(Duration::from_secs(5)).await, Some(1001));
    local.stop().await;
}

#[tokio::test]
async fn a_failing_queue_job_is_retried_and_lands_in_the_dlq() {
    let local = start().await;
    let sdk = natter_local::emulator::sdk_for(local.emulator.as_deref().unwrap()).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queue = local.stack.queue_url("IndexQueue").unwrap();
    let dlq = local.stack.queue_url("IndexDeadLetterQueue").unwrap();
    sqs.send_message()
        .queue_url(&queue)
        .message_body("this is not a history job")
        .send()
        .await
        .unwrap();
    // maxReceiveCount is 5; natter-local here caps the visibility timeout at 1 s.
    let mut landed = None;
    for _ in 0..40 {
        let r = sqs
            .receive_message()
            .queue_url(&dlq)
            .wait_time_seconds(1)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .unwrap();
        if let Some(m) = r.messages.unwrap_or_default().into_iter().next() {
            landed = Some(m);
            break;
        }
    }
    let landed = landed.expect("the job reached the DLQ");
    assert_eq!(landed.body(), Some("this is not a history job"));
    let received: u32 = landed
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|c| c.parse().ok())
        .unwrap_or_default();
    assert!(received >= 5, "moved after {received} receives");
    let stats = local.function("IndexFunction").stats();
    assert!(stats.invocations >= 2 && stats.errors == 0, "{stats:?}");
    local.stop().await;
}

#[tokio::test]
async fn a_crashing_or_hanging_function_gets_an_internal_error_and_the_server_keeps_serving() {
    let (mut o, _) = options();
    let faulty = natter_local::process::workspace_root().join("target/debug/natter-faulty");
    o.binaries = HashMap::from([("DefaultFunction".to_owned(), faulty)]);
    let local = natter_local::local::Local::start(o).await.unwrap();
    let mut c = Client::connect_raw(&local.ws_url, "alice").await;

    let r = c.request(json!({"action": "please-crash"})).await;
    assert_eq!(
        (r["type"].as_str(), r["code"].as_str(), r["message"].as_str()),
        (Some("error"), Some("internal"), Some("Internal server error"))
    );
    let r = c.request(json!({"action": "still-there"})).await;
    assert_eq!(r["type"], "echo", "a new instance serves the next frame: {r}");

    // The template gives the function 6 s; a hang is cut off there.
    let r = c.request(json!({"action": "please-hang"})).await;
    assert_eq!(r["code"], "internal");
    let r = c.request(json!({"action": "serving-again"})).await;
    assert_eq!(r["type"], "echo", "{r}");
    // Other routes were never affected.
    let _bob = Client::connect_raw(&local.ws_url, "bob").await;
    assert_eq!(c.send_message("m1", "bob", "x").await["type"], "ack");
    let stats = local.function("DefaultFunction").stats();
    assert_eq!((stats.crashes, stats.timeouts), (1, 1));
    local.stop().await;
}
