//! natter-local enforces the functions' IAM policies on their DynamoDB calls, as AWS does: a permission missing
//! from template.yaml fails here, not at the first call on AWS. (Before, an emulator allowed everything: the ack's
//! strong pre-read of Messages and the directory's invitations both lacked permissions and every test passed.)

use natter_tests::Client;
use serde_json::json;

#[tokio::test]
async fn a_call_the_functions_policy_does_not_allow_is_refused_as_aws_refuses_it() {
    let (mut opts, _logs) = natter_tests::options();
    // The template as it is, less the ack function's right to read the Mailbox table.
    let template = std::fs::read_to_string(&opts.template).unwrap();
    let granted =
        "Action: [dynamodb:BatchGetItem, dynamodb:UpdateItem]\n              Resource: [!GetAtt MailboxTable.Arn]";
    assert_eq!(
        template.matches(granted).count(),
        1,
        "the ack function's grant moved: update this test"
    );
    let narrowed = std::env::temp_dir().join(format!("natter-iam-{}.yaml", std::process::id()));
    std::fs::write(
        &narrowed,
        template.replace(
            granted,
            "Action: [dynamodb:UpdateItem]\n              Resource: [!GetAtt MailboxTable.Arn]",
        ),
    )
    .unwrap();
    opts.template = narrowed.clone();
    let local = natter_local::local::Local::start(opts).await.expect("natter-local");
    let mut alice = Client::connect(&local.ws_url, "alice").await;
    let mut bob = Client::connect(&local.ws_url, "bob").await;

    alice.send_message("m-1", "bob", "hello").await;
    let m = bob.wait_for("the message", |v| v["type"] == "message").await;
    let r = bob
        .request(json!({"action": "ack", "messageIds": [m["messageId"]]}))
        .await;
    assert_eq!(
        r["type"], "error",
        "the ack needs to read the acker's mailbox, which its role may not: {r}"
    );
    // What the role allows still works: sending needs no read by the ack function.
    assert_eq!(alice.send_message("m-2", "bob", "again").await["type"], "ack");
    local.stop().await;
    let _ = std::fs::remove_file(narrowed);
}
