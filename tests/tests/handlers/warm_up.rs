//! Opening the clients' connections at init (`AwsApp::warm_up`): one request per client, each refused without
//! effect, so a cold start pays no connection setup on its first frame and changes nothing anywhere.

use natter_core::meter::Sample;
use natter_tests::testkit::{ConnectionsStub, TestStack};

#[tokio::test]
async fn warming_up_calls_each_client_once_and_leaves_nothing_behind() {
    let stub = ConnectionsStub::start().await;
    let stack = TestStack::new(Some(&stub.base)).await;
    // The send function has all three clients: DynamoDB, SQS (four queues) and @connections.
    let app = stack.app("SendFunction");
    let started = app.meter.begin();
    app.warm_up().await;
    let calls = Sample::parse(&app.meter.finish(started, "init", 0)).unwrap().calls;
    assert_eq!(
        calls.into_iter().collect::<Vec<_>>(),
        [
            ("ApiGatewayManagementApi.PostToConnection".to_owned(), 1),
            ("DynamoDB.BatchGetItem".to_owned(), 1),
            ("SQS.SendMessageBatch".to_owned(), 1),
        ],
        "one request per client, none retried"
    );
    for table in ["ConnectionsTable", "MessagesTable", "PresenceTable", "SendClaimsTable"] {
        assert!(stack.scan(table).await.is_empty(), "{table} untouched");
    }
    for queue in ["IndexQueue", "FanoutQueue", "PresenceQueue"] {
        assert!(stack.drain(queue).await.is_empty(), "nothing queued on {queue}");
    }
    // The only post went to an id API Gateway never issues (`:` is outside its alphabet); AWS refuses it.
    assert_eq!(stub.post_count(), stub.posts_to("warm:up").len());

    // A function whose environment names no queue and no @connections endpoint warms DynamoDB alone.
    let default = stack.app("DefaultFunction");
    let started = default.meter.begin();
    default.warm_up().await;
    let calls = Sample::parse(&default.meter.finish(started, "init", 0)).unwrap().calls;
    assert_eq!(calls.keys().collect::<Vec<_>>(), ["DynamoDB.BatchGetItem"]);
}
