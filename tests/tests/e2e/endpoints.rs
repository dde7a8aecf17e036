//! One endpoint per service: DynamoDB on a second, separately started emulator (as DynamoDB Local would be) while
//! the first serves SQS. A chat works, and its messages are stored where DynamoDB was pointed, nowhere else.

use natter_local::emulator::{self, Emulator, Kind, sdk_for};
use natter_tests::{Client, options};

/// A second emulator for this test, held by a thread that outlives it (the parent-death signal follows the thread).
fn second_emulator() -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(
        move || match Emulator::start(Kind::default(), emulator::DEFAULT_ACCOUNT) {
            Ok(server) => {
                let _ = tx.send(server.endpoint.clone());
                loop {
                    std::thread::park();
                }
            }
            Err(e) => panic!("second emulator: {e}"),
        },
    );
    rx.recv().expect("the second emulator started")
}

async fn tables(endpoint: &str, prefix: &str) -> Vec<String> {
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk_for(endpoint).await);
    let names = dynamo
        .list_tables()
        .send()
        .await
        .expect("list tables")
        .table_names
        .unwrap_or_default();
    names.into_iter().filter(|n| n.starts_with(prefix)).collect()
}

#[tokio::test]
async fn dynamodb_on_a_second_emulator_serves_a_chat_and_holds_its_messages() {
    let dynamodb = tokio::task::spawn_blocking(second_emulator).await.unwrap();
    let (mut opts, _logs) = options();
    opts.dynamodb_endpoint = Some(dynamodb.clone());
    let prefix = opts.prefix.clone();
    let local = natter_local::local::Local::start(opts).await.expect("natter-local");
    let (mut alice, mut bob) = (
        Client::connect(&local.ws_url, "alice").await,
        Client::connect(&local.ws_url, "bob").await,
    );
    alice.send_message("e-1", "bob", "stored on the second emulator").await;
    let m = bob.wait_for("the message", |v| v["type"] == "message").await;
    assert_eq!(m["body"], "stored on the second emulator");

    assert!(
        !tables(&dynamodb, &prefix).await.is_empty(),
        "the tables are on the DynamoDB endpoint"
    );
    let main = local.emulator.clone().expect("an emulator");
    assert!(
        tables(&main, &prefix).await.is_empty(),
        "and not on the one that serves SQS"
    );
    let stored = aws_sdk_dynamodb::Client::new(&sdk_for(&dynamodb).await)
        .scan()
        .table_name(format!("{prefix}MessagesTable"))
        .send()
        .await
        .expect("scan");
    assert_eq!(stored.count(), 1);
    local.stop().await;
}
