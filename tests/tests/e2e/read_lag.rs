//! natter-local's read lag itself (`--read-lag`): after a write, an eventually consistent read and an index query
//! see the old state until the lag has passed, while a strongly consistent read sees the write at once, as on
//! DynamoDB.

use aws_sdk_dynamodb::types::AttributeValue as Av;
use natter_tests::options;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eventual_reads_and_index_queries_lag_and_consistent_reads_do_not() {
    let (mut o, _) = options();
    o.read_lag = Some(Duration::from_millis(800));
    let local = natter_local::local::Local::start(o).await.expect("natter-local");
    let proxy = local.proxy.as_ref().expect("a proxy").url.clone();
    let dynamo = aws_sdk_dynamodb::Client::new(&natter_local::emulator::sdk_for(&proxy).await);
    let users = natter_local::template::plain(&local.stack.names.refs["UsersTable"]);
    let messages = natter_local::template::plain(&local.stack.names.refs["MessagesTable"]);

    let written = Instant::now();
    dynamo
        .put_item()
        .table_name(&users)
        .item("user_id", Av::S("lagged".into()))
        .send()
        .await
        .unwrap();
    let read = |consistent: bool| {
        let dynamo = dynamo.clone();
        let users = users.clone();
        async move {
            dynamo
                .get_item()
                .table_name(users)
                .key("user_id", Av::S("lagged".into()))
                .consistent_read(consistent)
                .send()
                .await
                .unwrap()
                .item
                .is_some()
        }
    };
    assert!(read(true).await, "a strongly consistent read sees the write at once");
    assert!(!read(false).await, "an eventual read right after the write does not");
    assert!(
        written.elapsed() < Duration::from_millis(700),
        "the reads ran inside the lag"
    );

    // A GSI is eventually consistent whatever the request says.
    let inbox = |dynamo: aws_sdk_dynamodb::Client| {
        let messages = messages.clone();
        async move {
            dynamo
                .query()
                .table_name(messages)
                .index_name("Inbox")
                .key_condition_expression("inbox = :u")
                .expression_attribute_values(":u", Av::S("bob".into()))
                .send()
                .await
                .unwrap()
                .count()
        }
    };
    dynamo
        .put_item()
        .table_name(&messages)
        .item("message_id", Av::S("01J00000000000000000000000".into()))
        .item("timestamp", Av::N("1".into()))
        .item("inbox", Av::S("bob".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(inbox(dynamo.clone()).await, 0, "the index lags the write");

    // Replication polls the streams, so "after the lag" is the lag plus a poll or two (more on a slow emulator).
    let deadline = written + Duration::from_secs(5);
    while !(read(false).await && inbox(dynamo.clone()).await == 1) {
        assert!(
            Instant::now() < deadline,
            "the eventual read and the index never caught up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(written.elapsed() >= Duration::from_millis(800), "not before the lag");
    local.stop().await;
}
