//! Group rules over in-memory ports.

use super::Caller;
use crate::{
    error::Failure,
    frames::{AckReply, ErrorCode, GroupOp, SendFrame, ServerFrame, Target},
    ids::{Body, ClientMsgId, GroupId, GroupName, UserId},
    jobs::{FanoutJob, Job},
    model::Mark,
    now_ms,
    testing::{TestApp, conn as c, user as u},
};
use std::collections::HashSet;

/// Everyone is everyone's friend: a group's creator and owner add members at once (invitations have their own
/// tests below).
fn app(users: &[&str]) -> TestApp {
    TestApp::builder()
        .users(users)
        .all_friends()
        .settings(|s| {
            s.fanout_chunk = 3;
            s.max_group_members = 8;
        })
        .build()
}

fn code(r: Result<ServerFrame, Failure>) -> ErrorCode {
    r.unwrap_err().code()
}

async fn create(app: &TestApp, owner: &str, members: &[&str]) -> GroupId {
    let op = GroupOp::Create {
        name: GroupName::parse("team").unwrap(),
        members: members.iter().map(|m| u(m)).collect(),
    };
    match app.group_op(&u(owner), &op, now_ms()).await.unwrap() {
        ServerFrame::Group(g) => g.group.id,
        other => panic!("{other:?}"),
    }
}

fn group_send(cmid: &str, g: &GroupId) -> SendFrame {
    SendFrame {
        client_msg_id: ClientMsgId::parse(cmid).unwrap(),
        target: Target::Group(g.clone()),
        body: Body::parse("hello group").unwrap(),
        seq: None,
        device: None,
        attachments: Vec::new(),
    }
}

/// ann's `send` of `cmid` to `g`, from her connection a1.
async fn ann_sends(app: &TestApp, cmid: &str, g: &GroupId) -> Result<AckReply, Failure> {
    let ann = Caller {
        user: u("ann"),
        connection: c("a1"),
    };
    app.send(&ann, &group_send(cmid, g), now_ms(), now_ms() + 5000).await
}

fn members_of(frame: ServerFrame) -> Vec<String> {
    match frame {
        ServerFrame::Group(g) => g.group.members.iter().map(|m| m.to_string()).collect(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn create_needs_known_users_and_makes_the_creator_owner() {
    let app = app(&["ann", "ben", "cat"]);
    assert_eq!(
        code(
            app.group_op(
                &u("ann"),
                &GroupOp::Create {
                    name: GroupName::parse("x").unwrap(),
                    members: vec![u("zed")]
                },
                0
            )
            .await
        ),
        ErrorCode::NotFound
    );
    let g = create(&app, "ann", &["ben", "cat"]).await;
    let group = app.store.state.lock().unwrap().groups[&g].clone();
    assert_eq!((group.owner.as_str(), group.member_count), ("ann", 3));
    let too_many: Vec<UserId> = (0..9).map(|i| u(&format!("x{i}"))).collect();
    let op = GroupOp::Create {
        name: GroupName::parse("big").unwrap(),
        members: too_many,
    };
    assert_eq!(
        code(app.group_op(&u("ann"), &op, 0).await),
        ErrorCode::Forbidden,
        "beyond the configured size"
    );
}

#[tokio::test]
async fn only_the_owner_adds_and_removes_and_outsiders_are_forbidden() {
    let app = app(&["ann", "ben", "cat", "dan"]);
    let g = create(&app, "ann", &["ben"]).await;
    let add = |user: &str| GroupOp::Add {
        group: g.clone(),
        user: u(user),
    };
    assert_eq!(
        code(app.group_op(&u("ben"), &add("cat"), 0).await),
        ErrorCode::Forbidden,
        "a member is not the owner"
    );
    assert_eq!(
        code(app.group_op(&u("dan"), &add("cat"), 0).await),
        ErrorCode::Forbidden,
        "an outsider"
    );
    assert_eq!(
        code(app.group_op(&u("ann"), &add("nobody"), 0).await),
        ErrorCode::NotFound
    );
    let unknown = GroupOp::Members {
        group: GroupId::parse("nope").unwrap(),
    };
    assert_eq!(code(app.group_op(&u("ann"), &unknown, 0).await), ErrorCode::NotFound);
    assert_eq!(
        members_of(app.group_op(&u("ann"), &add("cat"), 0).await.unwrap()),
        ["ann", "ben", "cat"]
    );
    let remove = GroupOp::Remove {
        group: g.clone(),
        user: u("ben"),
    };
    assert_eq!(
        members_of(app.group_op(&u("ann"), &remove, 0).await.unwrap()),
        ["ann", "cat"]
    );
    assert_eq!(
        code(app.group_op(&u("dan"), &GroupOp::Members { group: g.clone() }, 0).await),
        ErrorCode::Forbidden
    );
}

#[tokio::test]
async fn a_member_added_later_starts_at_the_groups_sequence() {
    let app = app(&["ann", "ben"]);
    let g = create(&app, "ann", &[]).await;
    let caller = Caller {
        user: u("ann"),
        connection: c("a1"),
    };
    for i in 0..3 {
        app.send(&caller, &group_send(&format!("m{i}"), &g), now_ms(), now_ms() + 5000)
            .await
            .unwrap();
    }
    app.group_op(
        &u("ann"),
        &GroupOp::Add {
            group: g.clone(),
            user: u("ben"),
        },
        0,
    )
    .await
    .unwrap();
    let m = app.store.state.lock().unwrap().members[&g][&u("ben")].clone();
    assert_eq!((m.joined_seq, m.last_ack_seq, m.last_read_seq), (3, 3, 3));
}

#[tokio::test]
async fn when_the_owner_leaves_the_longest_standing_member_owns_and_the_last_one_ends_it() {
    let app = app(&["ann", "ben", "cat"]);
    let g = create(&app, "ann", &[]).await;
    app.group_op(
        &u("ann"),
        &GroupOp::Add {
            group: g.clone(),
            user: u("cat"),
        },
        10,
    )
    .await
    .unwrap();
    app.group_op(
        &u("ann"),
        &GroupOp::Add {
            group: g.clone(),
            user: u("ben"),
        },
        20,
    )
    .await
    .unwrap();
    match app
        .group_op(&u("ann"), &GroupOp::Leave { group: g.clone() }, 30)
        .await
        .unwrap()
    {
        ServerFrame::Group(r) => assert_eq!(r.group.owner.as_str(), "cat", "cat joined before ben"),
        other => panic!("{other:?}"),
    }
    app.group_op(&u("cat"), &GroupOp::Leave { group: g.clone() }, 40)
        .await
        .unwrap();
    app.group_op(&u("ben"), &GroupOp::Leave { group: g.clone() }, 50)
        .await
        .unwrap();
    assert!(
        !app.store.state.lock().unwrap().groups.contains_key(&g),
        "the last member leaving ends the group"
    );
}

/// ben online on b1: what a group send pushes him can be counted.
async fn ben_online(app: &TestApp) {
    app.connect(&u("ben"), &c("b1"), now_ms()).await.unwrap();
}

/// The group messages pushed to ben's connection b1 so far.
fn pushed_to_ben(app: &TestApp) -> usize {
    let posts = app.pusher.posts_to("b1");
    posts.iter().filter(|f| f["type"] == "message").count()
}

fn fanouts_queued(app: &TestApp) -> usize {
    let jobs = app.queue.jobs.lock().unwrap();
    jobs.iter().filter(|j| matches!(j, Job::Fanout(_))).count()
}

#[tokio::test]
async fn group_sends_get_consecutive_sequences_and_retries_do_not_burn_one() {
    let app = app(&["ann", "ben"]);
    let g = create(&app, "ann", &["ben"]).await;
    ben_online(&app).await;
    let first = ann_sends(&app, "m1", &g).await.unwrap();
    let retry = ann_sends(&app, "m1", &g).await.unwrap();
    let second = ann_sends(&app, "m2", &g).await.unwrap();
    assert_eq!((first.seq, retry.seq, second.seq), (Some(1), Some(1), Some(2)));
    assert_eq!(first.message_id, retry.message_id);
    assert_eq!(pushed_to_ben(&app), 2, "the retry pushed nothing");
    // A failure after the sequence was taken and stored: the retry resumes with the same number.
    app.store.faults.fail_next("mark", 1);
    assert_eq!(
        ann_sends(&app, "m3", &g).await.unwrap_err().code(),
        ErrorCode::Unavailable
    );
    let resumed = ann_sends(&app, "m3", &g).await.unwrap();
    assert_eq!(resumed.seq, Some(3));
    assert_eq!(app.store.state.lock().unwrap().groups[&g].last_seq, 3);
}

/// A group that fits one fan-out chunk is pushed by the send itself; a larger one through the fan-out queue; a
/// small group whose push fails at send falls back to the queue.
#[tokio::test]
async fn a_small_group_is_pushed_by_its_send_and_a_larger_one_through_the_queue() {
    let app = app(&["ann", "ben", "cat", "dan"]);
    let small = create(&app, "ann", &["ben"]).await;
    ben_online(&app).await;
    ann_sends(&app, "m1", &small).await.unwrap();
    assert_eq!(
        (pushed_to_ben(&app), fanouts_queued(&app)),
        (1, 0),
        "pushed at send, nothing queued"
    );

    app.store.faults.fail_next("presence", 1);
    ann_sends(&app, "m2", &small).await.unwrap();
    assert_eq!(
        (pushed_to_ben(&app), fanouts_queued(&app)),
        (1, 1),
        "the failed push is queued"
    );

    // Four members, chunks of three.
    let large = create(&app, "ann", &["ben", "cat", "dan"]).await;
    app.queue.jobs.lock().unwrap().clear();
    ann_sends(&app, "m3", &large).await.unwrap();
    assert_eq!(
        (pushed_to_ben(&app), fanouts_queued(&app)),
        (1, 1),
        "the fan-out pushes it"
    );
}

/// A group send writes no done mark: its GroupHistory row, written after the push, is one.
#[tokio::test]
async fn a_group_send_retried_after_its_lease_ran_out_is_acked_with_its_number_and_pushed_once() {
    let app = app(&["ann", "ben"]);
    let g = create(&app, "ann", &["ben"]).await;
    ben_online(&app).await;
    let first = ann_sends(&app, "m1", &g).await.unwrap();
    // The ack was lost and the client retries long after: the claim's lease has run out.
    for claim in app.store.state.lock().unwrap().claims.values_mut() {
        assert!(!claim.done, "no done mark is written");
        claim.lease_until = 1;
    }
    let retry = ann_sends(&app, "m1", &g).await.unwrap();
    assert_eq!((retry.message_id, retry.seq), (first.message_id, Some(1)));
    assert_eq!(pushed_to_ben(&app), 1, "the retry pushed nothing");
    assert_eq!(app.store.state.lock().unwrap().groups[&g].last_seq, 1);
}

#[tokio::test]
async fn a_group_send_whose_history_row_failed_is_finished_by_its_retry() {
    let app = app(&["ann", "ben"]);
    let g = create(&app, "ann", &["ben"]).await;
    ben_online(&app).await;
    app.store.faults.fail_next("record_group_message", 1);
    let failed = ann_sends(&app, "m1", &g).await.unwrap_err();
    assert_eq!(failed.code(), ErrorCode::Unavailable);
    assert_eq!(pushed_to_ben(&app), 1, "pushed before the row failed");
    let retry = ann_sends(&app, "m1", &g).await.unwrap();
    assert_eq!(retry.seq, Some(1), "the retry keeps the number the message holds");
    {
        let s = app.store.state.lock().unwrap();
        assert_eq!(
            s.group_history.get(&(g.clone(), 1)).map(|e| e.message_id),
            Some(retry.message_id),
            "the history holds the message"
        );
        assert_eq!(s.groups[&g].last_seq, 1);
    }
    // The resumed send cannot tell whether the first push went out, so it pushes again (dropped by its
    // messageId); a further retry finds the row and pushes nothing.
    assert_eq!(pushed_to_ben(&app), 2);
    ann_sends(&app, "m1", &g).await.unwrap();
    assert_eq!(pushed_to_ben(&app), 2);
}

#[tokio::test]
async fn a_non_member_send_is_forbidden_and_stores_nothing() {
    let app = app(&["ann", "ben", "eve"]);
    let g = create(&app, "ann", &["ben"]).await;
    let eve = Caller {
        user: u("eve"),
        connection: c("e1"),
    };
    let e = app
        .send(&eve, &group_send("m1", &g), now_ms(), now_ms() + 5000)
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Forbidden);
    let s = app.store.state.lock().unwrap();
    assert!(s.messages.is_empty() && s.claims.is_empty() && s.groups[&g].last_seq == 0);
}

#[tokio::test]
async fn sending_reads_the_group_for_the_sender_and_marks_never_move_back() {
    let app = app(&["ann", "ben"]);
    let g = create(&app, "ann", &["ben"]).await;
    for i in 1..=4 {
        ann_sends(&app, &format!("m{i}"), &g).await.unwrap();
    }
    let unread = |user: &str| {
        let s = app.store.state.lock().unwrap();
        s.groups[&g].unread_for(&s.members[&g][&u(user)])
    };
    assert_eq!((unread("ann"), unread("ben")), (0, 4));
    app.mark_group(&u("ben"), &g, Mark::Read, 3, 0).await.unwrap();
    app.mark_group(&u("ben"), &g, Mark::Read, 1, 0).await.unwrap();
    assert_eq!(unread("ben"), 1, "a read mark never moves backwards");
    app.mark_group(&u("ben"), &g, Mark::Ack, 4, 0).await.unwrap();
    app.mark_group(&u("ben"), &g, Mark::Ack, 2, 0).await.unwrap();
    assert_eq!(app.store.state.lock().unwrap().members[&g][&u("ben")].last_ack_seq, 4);
    assert_eq!(
        app.mark_group(&u("ben"), &g, Mark::Ack, 5, 0).await.unwrap_err().code(),
        ErrorCode::BadRequest,
        "past the newest message"
    );
    let eve_app = app.mark_group(&u("eve"), &g, Mark::Ack, 1, 0).await.unwrap_err();
    assert_eq!(eve_app.code(), ErrorCode::Forbidden);
}

#[tokio::test]
async fn fanout_reaches_every_online_member_but_the_sending_connection_in_chunks() {
    let users: Vec<String> = (0..7).map(|i| format!("m{i}")).collect();
    let refs: Vec<&str> = users.iter().map(String::as_str).collect();
    let app = app(&refs);
    let g = create(&app, "m0", &refs[1..]).await;
    // m0 on two devices, m1..m4 online, m5 and m6 offline.
    for (user, conn) in [
        ("m0", "s1"),
        ("m0", "s2"),
        ("m1", "c1"),
        ("m2", "c2"),
        ("m3", "c3"),
        ("m4", "c4"),
    ] {
        app.connect(&u(user), &c(conn), now_ms()).await.unwrap();
    }
    let ack = app
        .send(
            &Caller {
                user: u("m0"),
                connection: c("s1"),
            },
            &group_send("x", &g),
            now_ms(),
            now_ms() + 5000,
        )
        .await
        .unwrap();
    let root = app.queue.jobs.lock().unwrap().drain(..).find_map(|j| match j {
        Job::Fanout(f) => Some(f),
        _ => None,
    });
    let root: FanoutJob = root.unwrap();
    app.fanout(&root, now_ms()).await.unwrap();
    let chunks: Vec<FanoutJob> = app.queue.take(|j| match j {
        Job::Fanout(f) => Some(f),
        _ => None,
    });
    assert_eq!(
        chunks.len(),
        2,
        "7 members in chunks of 3: the root serves one, two are queued"
    );
    for chunk in &chunks {
        app.fanout(chunk, now_ms()).await.unwrap();
    }
    let reached: HashSet<String> = app
        .pusher
        .posts
        .lock()
        .unwrap()
        .iter()
        .map(|(c, _)| c.to_string())
        .collect();
    assert_eq!(reached, HashSet::from(["s2", "c1", "c2", "c3", "c4"].map(String::from)));
    let first = &app.pusher.posts_to("c1")[0];
    assert_eq!(
        (first["seq"].as_u64(), first["group"].as_str()),
        (Some(1), Some(g.as_str()))
    );
    assert_eq!(first["messageId"], ack.message_id.to_string());
    // A redelivered chunk pushes again but loses no one.
    app.fanout(&chunks[0], now_ms()).await.unwrap();
}

#[tokio::test]
async fn a_create_naming_many_unknown_users_answers_a_short_error() {
    let app = TestApp::with_users(&["alice"]);
    // As many as a group holds with its creator (1,000).
    let members: Vec<UserId> = (0..999).map(|i| u(&format!("nobody-{i:04}"))).collect();
    let op = GroupOp::Create {
        name: GroupName::parse("many").unwrap(),
        members,
    };
    let err = app.group_op(&u("alice"), &op, now_ms()).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
    let message = err.to_string();
    assert!(message.ends_with("and 994 more"), "{message}");
    assert!(message.len() < 200, "{} bytes", message.len());
}
