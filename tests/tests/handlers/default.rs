//! `$default`: what a client sees for frames no route takes.

use natter_core::lambda::ApiGatewayWebsocketProxyRequest;
use natter_tests::testkit::{TestStack, invocation, reply_frame, ws_event};
use serde_json::json;

#[tokio::test]
async fn unknown_actions_and_malformed_json_get_error_frames() {
    let stack = TestStack::new(None).await;
    let app = stack.app("DefaultFunction");
    let cases = [
        (r#"{"action":"dance","requestId":"r9"}"#, "unknown_action", Some("r9")),
        (
            r#"{"action":"send","clientMsgId":"c","to":"bob","body":"x"}"#,
            "unknown_action",
            None,
        ),
        ("definitely not json", "bad_request", None),
        (r#"{"no":"action"}"#, "bad_request", None),
        ("", "bad_request", None),
    ];
    for (body, code, request_id) in cases {
        let e = ws_event("default", "alice", "c1", Some(body));
        let r = natter_default::handle(&app, invocation::<ApiGatewayWebsocketProxyRequest>(e, 3000))
            .await
            .unwrap();
        let reply = reply_frame(&r).unwrap();
        assert_eq!(reply["type"], "error", "{body}");
        assert_eq!(reply["code"], code, "{body}");
        assert_eq!(reply.get("requestId").and_then(|v| v.as_str()), request_id, "{body}");
    }
    let _ = json!(null);
}
