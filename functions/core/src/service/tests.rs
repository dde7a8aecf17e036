//! The rules over in-memory ports: what a user would see, including failures and retries.

use crate::{
    frames::ErrorCode,
    ids::ConnectionId,
    jobs::IndexJob,
    model::{Opened, Transition},
    now_ms,
    testing::{TestApp, caller, conn, send_frame, user},
};

fn app(users: &[&str]) -> TestApp {
    TestApp::with_users(users)
}

fn far() -> i64 {
    now_ms() + 10_000
}

async fn online(app: &TestApp, u: &str, connections: &[&str]) {
    for c in connections {
        app.connect(&user(u), &conn(c), now_ms()).await.unwrap();
    }
}

fn messages(app: &TestApp) -> usize {
    app.store.state.lock().unwrap().messages.len()
}

/// The one-on-one messages on the Messages stream (inserted) for the index function, not yet taken.
fn history_jobs(app: &TestApp) -> usize {
    app.store.state.lock().unwrap().stream.len()
}

#[tokio::test]
async fn connect_registers_and_disconnect_of_the_last_connection_goes_offline() {
    let app = app(&[]);
    let now = now_ms();
    assert_eq!(
        app.connect(&user("alice"), &conn("c1"), now).await.unwrap(),
        Opened::Open(Transition::CameOnline)
    );
    assert_eq!(
        app.connect(&user("alice"), &conn("c2"), now).await.unwrap(),
        Opened::Open(Transition::Unchanged)
    );
    assert!(app.store.state.lock().unwrap().users.contains_key(&user("alice")));
    assert_eq!(
        app.drop_connection(&user("alice"), &conn("c1"), now + 5).await.unwrap(),
        Transition::Unchanged
    );
    assert_eq!(
        app.drop_connection(&user("alice"), &conn("c2"), now + 9).await.unwrap(),
        Transition::WentOffline
    );
    let s = app.store.state.lock().unwrap();
    assert_eq!(s.presence[&user("alice")].last_seen, Some(now + 9));
    assert!(s.connections.is_empty());
}

#[tokio::test]
async fn a_message_reaches_every_recipient_device_and_the_senders_other_devices() {
    let app = app(&[]);
    online(&app, "alice", &["a1", "a2"]).await;
    online(&app, "bob", &["b1", "b2"]).await;
    let ack = app
        .send(
            &caller("alice", "a1"),
            &send_frame("m1", "bob", "hello"),
            now_ms(),
            far(),
        )
        .await
        .unwrap();
    for c in ["b1", "b2", "a2"] {
        let got = app.pusher.posts_to(c);
        assert_eq!(got.len(), 1, "{c} gets the message once");
        assert_eq!(got[0]["type"], "message");
        assert_eq!(got[0]["messageId"], ack.message_id.to_string());
        assert_eq!(
            (got[0]["from"].as_str(), got[0]["to"].as_str()),
            (Some("alice"), Some("bob"))
        );
    }
    assert!(
        app.pusher.posts_to("a1").is_empty(),
        "the sending connection gets the ack, not a push"
    );
    assert_eq!(ack.timestamp, ack.message_id.timestamp());
    assert_eq!(history_jobs(&app), 1);
    assert_eq!(messages(&app), 1);
}

#[tokio::test]
async fn unknown_recipient_is_not_found_and_nothing_is_kept() {
    let app = app(&["alice"]);
    let err = app
        .send(
            &caller("alice", "a1"),
            &send_frame("m1", "nobody", "x"),
            now_ms(),
            far(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
    let s = app.store.state.lock().unwrap();
    assert!(
        s.messages.is_empty() && s.claims.is_empty(),
        "the claim of a refused send is dropped"
    );
}

#[tokio::test]
async fn sending_to_oneself_is_a_bad_request() {
    let app = app(&["alice"]);
    let err = app
        .send(&caller("alice", "a1"), &send_frame("m1", "alice", "x"), now_ms(), far())
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::BadRequest);
}

#[tokio::test]
async fn a_retry_gets_the_same_ack_and_is_not_delivered_again() {
    let app = app(&[]);
    online(&app, "alice", &["a1"]).await;
    online(&app, "bob", &["b1"]).await;
    let c = caller("alice", "a1");
    let first = app
        .send(&c, &send_frame("m1", "bob", "hello"), now_ms(), far())
        .await
        .unwrap();
    let retry = app
        .send(&c, &send_frame("m1", "bob", "something else"), now_ms(), far())
        .await
        .unwrap();
    assert_eq!(first, retry);
    assert_eq!(app.pusher.posts_to("b1").len(), 1);
    assert_eq!(messages(&app), 1);
    // One insert on the stream, however many retries; bob sees the message unread once.
    let jobs: Vec<IndexJob> = app.store.take_stream();
    assert_eq!(jobs.len(), 1);
    app.index_direct(&jobs[0]).await.unwrap();
    assert_eq!(app.store.session("bob", "alice").unread, 1);
    // A copy flagged `again` (queued by a retry in earlier releases), once indexed, is one read: it does not even
    // try the writes (which would fail here).
    app.store.faults.fail_next("index_direct", 1);
    let again = IndexJob {
        again: true,
        ..jobs[0].clone()
    };
    app.index_direct(&again).await.unwrap();
    assert_eq!(app.store.session("bob", "alice").unread, 1);
    let stored = app.store.state.lock().unwrap().messages[&first.message_id].body.clone();
    assert_eq!(stored.unwrap().as_str(), "hello", "the first attempt wins");
}

#[tokio::test]
async fn ten_concurrent_retries_store_one_message() {
    let app = app(&[]);
    online(&app, "alice", &["a1"]).await;
    online(&app, "bob", &["b1"]).await;
    let c = caller("alice", "a1");
    let frame = send_frame("m1", "bob", "hello");
    let acks = futures::future::join_all((0..10).map(|_| app.send(&c, &frame, now_ms(), far()))).await;
    let ids: std::collections::HashSet<_> = acks.into_iter().map(|a| a.unwrap().message_id).collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(messages(&app), 1);
    assert_eq!(app.pusher.posts_to("b1").len(), 1);
}

#[tokio::test]
async fn a_backend_failure_is_unavailable_and_the_retry_succeeds_exactly_once() {
    for op in ["put_message", "lookup", "claim"] {
        let app = app(&[]);
        online(&app, "alice", &["a1"]).await;
        online(&app, "bob", &["b1"]).await;
        let c = caller("alice", "a1");
        app.store.faults.fail_next(op, 1);
        let err = app
            .send(&c, &send_frame("m1", "bob", "hello"), now_ms(), far())
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::Unavailable, "{op}");
        let ack = app
            .send(&c, &send_frame("m1", "bob", "hello"), now_ms(), far())
            .await
            .unwrap();
        assert_eq!(messages(&app), 1, "{op}");
        let ids: Vec<_> = app
            .pusher
            .posts_to("b1")
            .iter()
            .map(|p| p["messageId"].as_str().unwrap().to_owned())
            .collect();
        assert!(
            !ids.is_empty() && ids.iter().all(|i| *i == ack.message_id.to_string()),
            "{op}: {ids:?}"
        );
        // A third attempt is a plain duplicate now.
        let again = app
            .send(&c, &send_frame("m1", "bob", "hello"), now_ms(), far())
            .await
            .unwrap();
        assert_eq!(again, ack, "{op}");
    }
}

#[tokio::test]
async fn a_queue_failure_does_not_fail_a_one_on_one_send_whose_indexing_is_on_the_stream() {
    let app = TestApp::builder()
        .users(&["bob"])
        .settings(|s| s.notify_offline = true)
        .build();
    online(&app, "alice", &["a1"]).await;
    let c = caller("alice", "a1");
    app.queue.jobs.lock().unwrap().clear();
    // Bob is away: the send queues his notification, and the queue fails. The send queues nothing else.
    app.queue.faults.fail_next("enqueue", 1);
    app.send(&c, &send_frame("m1", "bob", "x"), now_ms(), far())
        .await
        .unwrap();
    assert_eq!(history_jobs(&app), 1);
    assert_eq!(messages(&app), 1);
    let queued = app.queue.jobs.lock().unwrap().clone();
    assert!(queued.is_empty(), "{queued:?}");
}

#[tokio::test]
async fn a_crashed_attempt_is_taken_over_after_its_lease() {
    let app = app(&[]);
    online(&app, "alice", &["a1"]).await;
    online(&app, "bob", &["b1"]).await;
    let c = caller("alice", "a1");
    // The first attempt claimed, failed to store, and died without releasing (its lease runs 300 ms).
    app.store.faults.fail_next("put_message", 1);
    app.store.faults.fail_next("release", 1);
    let _ = app
        .send(&c, &send_frame("m1", "bob", "x"), now_ms(), far())
        .await
        .unwrap_err();
    let ack = app
        .send(&c, &send_frame("m1", "bob", "x"), now_ms(), far())
        .await
        .unwrap();
    assert_eq!(messages(&app), 1);
    assert!(
        app.store
            .state
            .lock()
            .unwrap()
            .claims
            .values()
            .all(|c| c.message_id == ack.message_id)
    );
}

#[tokio::test]
async fn a_send_whose_first_attempt_stored_and_died_is_acked_at_once_and_indexed() {
    let app = app(&[]);
    online(&app, "alice", &["a1"]).await;
    online(&app, "bob", &["b1"]).await;
    let c = caller("alice", "a1");
    // Stored, then the mailbox write failed and the release too: the claim's lease still runs.
    app.store.faults.fail_next("mailbox_put", 1);
    app.store.faults.fail_next("release", 1);
    let _ = app
        .send(&c, &send_frame("m1", "bob", "x"), now_ms(), far())
        .await
        .unwrap_err();
    assert_eq!(history_jobs(&app), 1, "the insert is on the stream");
    // The stored message is the done mark: no wait for the lease, even with little time left.
    let ack = app
        .send(&c, &send_frame("m1", "bob", "x"), now_ms(), now_ms() + 600)
        .await
        .unwrap();
    assert_eq!(messages(&app), 1);
    assert_eq!(history_jobs(&app), 1, "the retry inserted nothing");
    let waiting = app.store.state.lock().unwrap().inbox[&user("bob")].len();
    assert_eq!(waiting, 1, "the retry put the mailbox row back");
    // The first attempt never pushed (its mailbox row failed before): the retry does, once; the next one acks.
    let again = app
        .send(&c, &send_frame("m1", "bob", "x"), now_ms(), far())
        .await
        .unwrap();
    assert_eq!(again, ack);
    let posts = app.pusher.posts_to("b1");
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(posts[0]["messageId"], ack.message_id.to_string());
}

#[tokio::test]
async fn a_send_over_the_rate_limit_keeps_nothing_and_its_retry_in_the_next_window_is_sent_once() {
    let app = TestApp::builder()
        .settings(|s| {
            s.frame_limit = 1;
            s.frame_window_ms = 60_000;
        })
        .build();
    online(&app, "alice", &["a1"]).await;
    online(&app, "bob", &["b1"]).await;
    let c = caller("alice", "a1");
    let window = 100 * 60_000;
    assert!(app.admit(&c.user, window).await, "the window's one frame");
    let err = app
        .send(&c, &send_frame("m1", "bob", "x"), window + 10, far())
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::RateLimited);
    assert_eq!(messages(&app), 0);
    assert!(
        app.store.state.lock().unwrap().claims.is_empty(),
        "the claim went again"
    );
    // Known over the limit: refused again without a count, and still nothing kept.
    let err = app
        .send(&c, &send_frame("m1", "bob", "x"), window + 20, far())
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::RateLimited);
    assert_eq!(app.store.state.lock().unwrap().frames[&(c.user.clone(), 100)], 2);
    let ack = app
        .send(&c, &send_frame("m1", "bob", "x"), window + 60_000, far())
        .await
        .unwrap();
    assert_eq!(messages(&app), 1);
    assert_eq!(app.pusher.posts_to("b1").len(), 1);
    assert_eq!(app.pusher.posts_to("b1")[0]["messageId"], ack.message_id.to_string());
}

#[tokio::test]
async fn a_waiting_retry_gives_up_before_the_deadline() {
    let app = app(&[]);
    online(&app, "alice", &["a1"]).await;
    online(&app, "bob", &["b1"]).await;
    let c = caller("alice", "a1");
    app.store.faults.fail_next("put_message", 1);
    app.store.faults.fail_next("release", 1);
    let _ = app
        .send(&c, &send_frame("m1", "bob", "x"), now_ms(), far())
        .await
        .unwrap_err();
    // The lease still runs and the invocation has almost no time left: unavailable, not a hang.
    let err = app
        .send(&c, &send_frame("m1", "bob", "x"), now_ms(), now_ms() + 100)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Unavailable);
}

#[tokio::test]
async fn a_gone_connection_is_removed_and_the_message_is_still_stored() {
    let app = app(&[]);
    online(&app, "alice", &["a1"]).await;
    online(&app, "bob", &["b1"]).await;
    // b2 connected a minute ago, past the grace period of a connection still inside `$connect`.
    app.connect(&user("bob"), &conn("b2"), now_ms() - 60_000).await.unwrap();
    app.pusher.gone.lock().unwrap().insert(conn("b2"));
    app.send(&caller("alice", "a1"), &send_frame("m1", "bob", "x"), now_ms(), far())
        .await
        .unwrap();
    assert_eq!(messages(&app), 1);
    assert_eq!(app.pusher.posts_to("b1").len(), 1);
    let s = app.store.state.lock().unwrap();
    assert!(!s.connections.contains_key(&conn("b2")));
    assert!(!s.presence[&user("bob")].connections.contains_key(&conn("b2")));
}

#[tokio::test]
async fn an_ack_marks_delivered_and_sends_a_receipt_to_the_sender() {
    let app = app(&[]);
    online(&app, "alice", &["a1", "a2"]).await;
    online(&app, "bob", &["b1"]).await;
    let ack = app
        .send(&caller("alice", "a1"), &send_frame("m1", "bob", "x"), now_ms(), far())
        .await
        .unwrap();
    // Someone else acking changes nothing.
    app.ack_direct(&user("mallory"), &[ack.message_id], now_ms(), now_ms())
        .await
        .unwrap();
    assert!(app.pusher.posts_to("a1").is_empty());
    app.ack_direct(&user("bob"), &[ack.message_id], now_ms(), now_ms())
        .await
        .unwrap();
    for c in ["a1", "a2"] {
        let receipts: Vec<_> = app
            .pusher
            .posts_to(c)
            .into_iter()
            .filter(|p| p["type"] == "receipt")
            .collect();
        assert_eq!(receipts.len(), 1, "{c}");
        assert_eq!(receipts[0]["status"], "delivered");
        assert_eq!(receipts[0]["by"], "bob");
        assert_eq!(receipts[0]["messageIds"][0], ack.message_id.to_string());
    }
    let s = app.store.state.lock().unwrap();
    assert!(s.messages[&ack.message_id].delivered_at.is_some());
    assert!(s.inbox[&user("bob")].is_empty());
}

#[tokio::test]
async fn indexing_counts_unread_once_and_keeps_the_newest_preview() {
    let app = app(&[]);
    online(&app, "alice", &["a1"]).await;
    app.store.register(&user("bob"), 0).await.unwrap();
    let c = caller("alice", "a1");
    let first = app
        .send(&c, &send_frame("m1", "bob", "first"), now_ms(), far())
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    app.send(&c, &send_frame("m2", "bob", "second"), now_ms(), far())
        .await
        .unwrap();
    let jobs = app.store.take_stream();
    // Delivered out of order and twice, as a retried batch may.
    for job in jobs.iter().rev().chain(jobs.iter()) {
        app.index_direct(job).await.unwrap();
    }
    let s = app.store.state.lock().unwrap();
    let session = &s.sessions[&(user("bob"), user("alice"))];
    assert_eq!(session.unread, 2);
    assert_eq!(session.last.as_ref().unwrap().2.as_deref(), Some("second"));
    assert!(s.index.contains(&(user("alice"), first.message_id)) && s.index.contains(&(user("bob"), first.message_id)));
}

use crate::ports::Directory as _;

#[tokio::test]
async fn a_read_naming_a_message_not_yet_indexed_is_receipted_when_indexed_and_never_counts_unread() {
    let app = app(&[]);
    online(&app, "alice", &["a1"]).await;
    online(&app, "bob", &["b1"]).await;
    let c = caller("alice", "a1");
    let ack = app
        .send(&c, &send_frame("m1", "bob", "read at once"), now_ms(), far())
        .await
        .unwrap();
    let read_receipts = || -> Vec<serde_json::Value> {
        app.pusher
            .posts_to("a1")
            .into_iter()
            .filter(|p| p["type"] == "receipt" && p["status"] == "read")
            .collect()
    };
    // bob's client shows the push and reads it before the history job ran: the store cannot vouch for it yet.
    app.read_direct(&user("bob"), &user("alice"), Some(ack.timestamp), now_ms())
        .await
        .unwrap();
    assert!(read_receipts().is_empty());
    let jobs = app.store.take_stream();
    // Delivered twice, as a retried batch may: one receipt.
    for job in jobs.iter().chain(&jobs) {
        app.index_direct(job).await.unwrap();
    }
    let receipts = read_receipts();
    assert_eq!(receipts.len(), 1, "{receipts:?}");
    assert_eq!(
        (&receipts[0]["by"], &receipts[0]["upTo"]),
        (&"bob".into(), &ack.timestamp.into())
    );
    assert_eq!(
        app.store.session("bob", "alice").unread,
        0,
        "read before it was indexed"
    );
    // The mark never moves back, and a mark in the future is clamped to now.
    app.read_direct(&user("bob"), &user("alice"), Some(ack.timestamp - 1), now_ms())
        .await
        .unwrap();
    assert_eq!(app.store.session("bob", "alice").last_read_ts, Some(ack.timestamp));
    let now = now_ms();
    app.read_direct(&user("bob"), &user("alice"), Some(now + 3_600_000), now)
        .await
        .unwrap();
    assert_eq!(app.store.session("bob", "alice").last_read_ts, Some(now));
    assert_eq!(
        read_receipts().len(),
        1,
        "nothing more was received, nothing more to tell"
    );
}

#[tokio::test]
async fn reading_resets_unread_and_sends_one_read_receipt_up_to_the_newest_message() {
    let app = app(&[]);
    online(&app, "alice", &["a1"]).await;
    online(&app, "bob", &["b1"]).await;
    let c = caller("alice", "a1");
    app.send(&c, &send_frame("m1", "bob", "one"), now_ms(), far())
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    let last = app
        .send(&c, &send_frame("m2", "bob", "two"), now_ms(), far())
        .await
        .unwrap();
    for job in app.store.take_stream() {
        app.index_direct(&job).await.unwrap();
    }
    assert_eq!(app.store.session("bob", "alice").unread, 2);
    // Alice reading (she received nothing from bob) changes nothing and sends nothing.
    app.read_direct(&user("alice"), &user("bob"), None, now_ms())
        .await
        .unwrap();
    assert!(app.pusher.posts_to("b1").iter().all(|p| p["type"] != "receipt"));
    app.read_direct(&user("bob"), &user("alice"), None, now_ms())
        .await
        .unwrap();
    app.read_direct(&user("bob"), &user("alice"), None, now_ms())
        .await
        .unwrap();
    assert_eq!(app.store.session("bob", "alice").unread, 0);
    let receipts: Vec<_> = app
        .pusher
        .posts_to("a1")
        .into_iter()
        .filter(|p| p["type"] == "receipt")
        .collect();
    assert_eq!(receipts.len(), 1, "reading again sends nothing new");
    assert_eq!(receipts[0]["status"], "read");
    assert_eq!(receipts[0]["by"], "bob");
    assert_eq!(receipts[0]["upTo"], last.timestamp);
}

#[tokio::test]
async fn a_connection_opened_between_the_lookup_and_the_store_still_gets_the_message() {
    let app = app(&[]);
    online(&app, "bob", &["b1"]).await;
    // The send looked bob up (only b1); then bob reconnected on b2 and synced before the message was stored.
    let snapshot = vec![(user("bob"), ConnectionId::parse("b1").unwrap())];
    online(&app, "bob", &["b2"]).await;
    let (report, _) = app
        .deliver_direct(
            &user("bob"),
            &caller("alice", "a1"),
            &snapshot,
            r#"{"type":"message"}"#,
            now_ms(),
        )
        .await;
    assert_eq!(report.delivered, 2);
    assert_eq!(app.pusher.posts_to("b1").len(), 1);
    assert_eq!(app.pusher.posts_to("b2").len(), 1, "the new connection got it, once");
}

#[tokio::test]
async fn a_connection_still_inside_connect_answering_410_is_kept() {
    let app = app(&[]);
    online(&app, "alice", &["a1"]).await;
    // bob's new connection is registered, but API Gateway answers 410 until its `$connect` returns.
    online(&app, "bob", &["b9"]).await;
    app.pusher.gone.lock().unwrap().insert(conn("b9"));
    app.send(&caller("alice", "a1"), &send_frame("m1", "bob", "x"), now_ms(), far())
        .await
        .unwrap();
    app.pusher.gone.lock().unwrap().clear();
    {
        let s = app.store.state.lock().unwrap();
        assert!(s.presence[&user("bob")].connections.contains_key(&conn("b9")), "kept");
    }
    // Open now: the next message reaches it (and the first waits in the mailbox for bob's sync).
    app.send(&caller("alice", "a1"), &send_frame("m2", "bob", "y"), now_ms(), far())
        .await
        .unwrap();
    assert_eq!(app.pusher.posts_to("b9").len(), 1);
}
