//! Notifications over in-memory ports and a recording notifier: one per conversation and minute, coalesced;
//! none while online, after unregister, or for a blocked sender; a dead token is forgotten; at most 10 devices.

use crate::{
    frames::DeviceOp,
    jobs::{Job, NotifyJob},
    model::{FriendRow, FriendState, NewConnection},
    notify::{Device, DeviceToken, Notification, Notifier, Platform, Published, Res},
    ports::PresenceStore,
    testing::{TestApp, conn, user},
};
use futures::future::BoxFuture;
use std::sync::{Arc, Mutex};

/// Records what would be published; tokens starting with "dead" are reported disabled.
#[derive(Default)]
struct Recorder(Mutex<Vec<(String, Notification)>>);

impl Notifier for Recorder {
    fn supports(&self, p: Platform) -> bool {
        p != Platform::Webpush
    }
    fn create_endpoint<'a>(&'a self, _: Platform, t: &'a DeviceToken) -> BoxFuture<'a, Res<String>> {
        Box::pin(async move { Ok(format!("endpoint/{}", t.as_str())) })
    }
    fn delete_endpoint<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Res<()>> {
        Box::pin(async { Ok(()) })
    }
    fn publish<'a>(&'a self, d: &'a Device, n: &'a Notification) -> BoxFuture<'a, Res<Published>> {
        Box::pin(async move {
            if d.token.as_str().starts_with("dead") {
                return Ok(Published::Disabled);
            }
            self.0.lock().unwrap().push((d.token.as_str().to_owned(), n.clone()));
            Ok(Published::Sent)
        })
    }
}

const T: i64 = 1_800_000_000_000;

fn setup() -> (TestApp, Arc<Recorder>) {
    let rec = Arc::new(Recorder::default());
    let app = TestApp::with_users(&["alice", "bob"]).with_notifier(rec.clone());
    (app, rec)
}

fn register(token: &str) -> DeviceOp {
    DeviceOp::Register {
        platform: Platform::Fcm,
        token: DeviceToken::parse(token).unwrap(),
    }
}

fn job(follow_up: bool) -> NotifyJob {
    NotifyJob {
        notify: user("bob"),
        from: user("alice"),
        group: None,
        follow_up,
        delay: 0,
    }
}

fn texts(rec: &Recorder) -> Vec<String> {
    rec.0
        .lock()
        .unwrap()
        .iter()
        .map(|(_, n)| format!("{}: {}", n.title, n.text))
        .collect()
}

#[tokio::test]
async fn a_burst_is_one_notification_then_one_coalesced_a_minute_later() {
    let (app, rec) = setup();
    app.device_op(&user("bob"), &register("tok-1"), T).await.unwrap();
    app.notify(&job(false), T).await.unwrap();
    assert_eq!(texts(&rec), ["alice: 1 new message"]);
    for i in 1..=3 {
        app.notify(&job(false), T + i * 1000).await.unwrap();
    }
    assert_eq!(rec.0.lock().unwrap().len(), 1, "nothing more within the minute");
    let follow_ups: Vec<NotifyJob> = app
        .queue
        .jobs
        .lock()
        .unwrap()
        .iter()
        .filter_map(|j| match j {
            Job::Notify(n) => Some(n.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(follow_ups.len(), 1, "one follow-up for the minute: {follow_ups:?}");
    assert!(follow_ups[0].follow_up && follow_ups[0].delay >= 57, "{follow_ups:?}");
    app.notify(&follow_ups[0], T + 60_000).await.unwrap();
    assert_eq!(texts(&rec), ["alice: 1 new message", "alice: 3 new messages"]);
    app.notify(&job(true), T + 125_000).await.unwrap();
    assert_eq!(
        rec.0.lock().unwrap().len(),
        2,
        "a follow-up with nothing gathered sends nothing"
    );
}

#[tokio::test]
async fn none_while_online_after_unregister_or_from_a_blocked_sender() {
    let (app, rec) = setup();
    app.device_op(&user("bob"), &register("tok-1"), T).await.unwrap();
    let c = NewConnection {
        id: conn("b1"),
        user: user("bob"),
        connected_at: T,
        expires_at: T / 1000 + 3600,
    };
    app.store.open(&c, 10).await.unwrap();
    app.notify(&job(false), T).await.unwrap();
    app.store.close(&user("bob"), &conn("b1"), T).await.unwrap();
    app.store.state.lock().unwrap().friends.insert(
        (user("bob"), user("alice")),
        FriendRow::new(user("alice"), FriendState::Blocked),
    );
    app.notify(&job(false), T + 120_000).await.unwrap();
    app.store.state.lock().unwrap().friends.clear();
    let unregister = DeviceOp::Unregister {
        token: DeviceToken::parse("tok-1").unwrap(),
    };
    app.device_op(&user("bob"), &unregister, T).await.unwrap();
    app.notify(&job(false), T + 240_000).await.unwrap();
    assert!(texts(&rec).is_empty(), "{:?}", texts(&rec));
}

#[tokio::test]
async fn a_dead_token_is_forgotten_and_a_user_keeps_its_newest_ten_devices() {
    let (app, rec) = setup();
    for i in 0..12 {
        app.device_op(&user("bob"), &register(&format!("tok-{i}")), T + i)
            .await
            .unwrap();
    }
    app.device_op(&user("bob"), &register("dead-1"), T + 20).await.unwrap();
    let web = DeviceOp::Register {
        platform: Platform::Webpush,
        token: DeviceToken::parse("w").unwrap(),
    };
    assert!(
        app.device_op(&user("bob"), &web, T).await.is_err(),
        "a platform this deployment lacks"
    );
    app.notify(&job(false), T + 30).await.unwrap();
    let got: Vec<String> = rec.0.lock().unwrap().iter().map(|(t, _)| t.clone()).collect();
    assert_eq!(got.len(), 9, "the newest ten, one of them dead: {got:?}");
    assert!(!got.contains(&"tok-0".to_owned()) && !got.contains(&"tok-2".to_owned()));
    let left = app.store.state.lock().unwrap().devices.len();
    assert_eq!(left, 9, "the dead one is forgotten");
}

/// A group of `members` (all friends of alice, who creates it): its id.
async fn group_of(app: &TestApp, members: &[&str]) -> crate::ids::GroupId {
    let op = crate::frames::GroupOp::Create {
        name: crate::ids::GroupName::parse("book club").unwrap(),
        members: members.iter().map(|m| user(m)).collect(),
    };
    match app.group_op(&user("alice"), &op, T).await.unwrap() {
        crate::frames::ServerFrame::Group(g) => g.group.id,
        other => panic!("{other:?}"),
    }
}

/// alice sends to the group; the fan-out runs (a small group's runs in the send itself, a larger group's job
/// here); the notify jobs queued, in order.
async fn fan_out_a_message(app: &TestApp, g: &crate::ids::GroupId, cmid: &str) -> Vec<NotifyJob> {
    let frame = crate::frames::SendFrame {
        client_msg_id: crate::ids::ClientMsgId::parse(cmid).unwrap(),
        target: crate::frames::Target::Group(g.clone()),
        body: crate::ids::Body::parse("chapter one tonight").unwrap(),
        seq: None,
        device: None,
        attachments: Vec::new(),
    };
    app.send(&crate::testing::caller("alice", "a1"), &frame, T, T + 10_000)
        .await
        .unwrap();
    let mut notified = Vec::new();
    for job in app.queue.take(Some) {
        match job {
            Job::Fanout(f) => app.fanout(&f, T).await.unwrap(),
            Job::Notify(n) => notified.push(n),
            _ => {}
        }
    }
    notified.extend(app.queue.take(|j| match j {
        Job::Notify(n) => Some(n),
        _ => None,
    }));
    notified
}

#[tokio::test]
async fn an_away_member_of_a_small_group_is_notified_about_the_group_and_a_big_group_notifies_nobody() {
    let rec = Arc::new(Recorder::default());
    let app = TestApp::builder()
        .users(&["alice", "bob", "carol", "dave"])
        .all_friends()
        .settings(|s| {
            s.notify_offline = true;
            s.fanout_chunk = 3;
        })
        .build()
        .with_notifier(rec.clone());
    app.device_op(&user("bob"), &register("bob-phone"), T).await.unwrap();
    app.connect(&user("carol"), &crate::testing::conn("c1"), T)
        .await
        .unwrap();

    // alice, bob, carol: one chunk. bob is away (notified), carol online (not), alice wrote it (not).
    let small = group_of(&app, &["bob", "carol"]).await;
    let jobs = fan_out_a_message(&app, &small, "g1").await;
    let notified: Vec<String> = jobs.iter().map(|j| j.notify.to_string()).collect();
    assert_eq!(notified, ["bob"], "only the away member");
    assert_eq!(jobs[0].group.as_ref(), Some(&small));
    app.notify(&jobs[0], T + 5_000).await.unwrap();
    let sent = rec.0.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    let n = &sent[0].1;
    assert_eq!((n.title.as_str(), n.text.as_str()), ("book club", "1 new message"));
    assert_eq!((n.conversation.as_str(), n.group), (small.to_string().as_str(), true));

    // Four members: more than one chunk of three. Nobody is notified, however many are away.
    let big = group_of(&app, &["bob", "carol", "dave"]).await;
    assert!(fan_out_a_message(&app, &big, "g2").await.is_empty());
}

/// The notification jobs queued for bob so far (taken off the queue).
fn notify_jobs_for_bob(app: &TestApp) -> Vec<NotifyJob> {
    app.queue.take(|j| match j {
        Job::Notify(n) if n.notify == user("bob") => Some(n),
        _ => None,
    })
}

#[tokio::test]
async fn a_user_without_devices_is_queued_no_notification_until_it_registers_one() {
    let rec = Arc::new(Recorder::default());
    let app = TestApp::builder()
        .users(&["alice", "bob"])
        .all_friends()
        .settings(|s| s.notify_offline = true)
        .build()
        .with_notifier(rec.clone());
    // bob connected once (his presence exists) and is away.
    app.connect(&user("bob"), &conn("b1"), T).await.unwrap();
    app.drop_connection(&user("bob"), &conn("b1"), T + 1).await.unwrap();
    let send = |cmid: &'static str, at: i64| {
        let app = &app;
        async move {
            let frame = crate::testing::send_frame(cmid, "bob", "hi");
            app.send(&crate::testing::caller("alice", "a1"), &frame, at, at + 10_000)
                .await
                .unwrap();
        }
    };
    send("m1", T + 10).await;
    let jobs = notify_jobs_for_bob(&app);
    assert_eq!(jobs.len(), 1, "unknown: queued");
    app.notify(&jobs[0], T + 2_000).await.unwrap();
    send("m2", T + 3_000).await;
    assert!(
        notify_jobs_for_bob(&app).is_empty(),
        "known to have no device: nothing queued"
    );

    app.device_op(&user("bob"), &register("tok-1"), T + 4_000)
        .await
        .unwrap();
    send("m3", T + 5_000).await;
    let jobs = notify_jobs_for_bob(&app);
    assert_eq!(jobs.len(), 1, "a device registered: queued again");
    app.notify(&jobs[0], T + 7_000).await.unwrap();
    assert_eq!(texts(&rec), ["alice: 1 new message"]);
}
