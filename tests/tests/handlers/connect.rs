//! `$connect` against the real emulator: registration, connection registry (with TTL) and presence.

use natter_connect::handle;
use natter_tests::testkit::{TestStack, invocation, ws_event};

fn s(item: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>, k: &str) -> String {
    item[k].as_s().cloned().or_else(|_| item[k].as_n().cloned()).unwrap()
}

#[tokio::test]
async fn connect_registers_the_user_records_the_connection_and_presence() {
    let stack = TestStack::new(None).await;
    let app = stack.app("ConnectFunction");
    let before = natter_core::now_ms();
    for conn in ["conn-a1", "conn-a2"] {
        let r = handle(&app, invocation(ws_event("connect", "alice", conn, None), 3000))
            .await
            .unwrap();
        assert_eq!(r.status_code, 200);
        assert!(r.body.is_none(), "nothing is sent during the upgrade");
    }
    let users = stack.scan("UsersTable").await;
    assert_eq!(users.len(), 1);
    assert_eq!(s(&users[0], "user_id"), "alice");
    let joined: i64 = s(&users[0], "joined_at").parse().unwrap();
    assert!(joined >= before);

    let connections = stack.scan("ConnectionsTable").await;
    assert_eq!(connections.len(), 2);
    for c in &connections {
        assert_eq!(s(c, "user_id"), "alice");
        let expires: i64 = s(c, "expires_at").parse().unwrap();
        assert!(
            expires > before / 1000 + 2 * 3600,
            "the TTL outlives API Gateway's 2 h limit"
        );
    }

    let presence = stack.scan("PresenceTable").await;
    assert_eq!(presence.len(), 1);
    let conns = presence[0]["conns"].as_m().unwrap();
    let mut ids: Vec<_> = conns.keys().cloned().collect();
    ids.sort();
    assert_eq!(ids, ["conn-a1", "conn-a2"]);
}

#[tokio::test]
async fn a_second_connect_keeps_the_first_registration_time() {
    let stack = TestStack::new(None).await;
    let app = stack.app("ConnectFunction");
    handle(&app, invocation(ws_event("connect", "bob", "c1", None), 3000))
        .await
        .unwrap();
    let first = s(&stack.scan("UsersTable").await[0], "joined_at");
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    handle(&app, invocation(ws_event("connect", "bob", "c2", None), 3000))
        .await
        .unwrap();
    assert_eq!(s(&stack.scan("UsersTable").await[0], "joined_at"), first);
}

#[tokio::test]
async fn connect_without_an_authorizer_context_fails_and_records_nothing() {
    let stack = TestStack::new(None).await;
    let app = stack.app("ConnectFunction");
    let mut e = ws_event("connect", "alice", "c1", None);
    e["requestContext"]["authorizer"] = serde_json::json!({});
    assert!(handle(&app, invocation(e, 3000)).await.is_err());
    assert!(stack.scan("ConnectionsTable").await.is_empty());
}
