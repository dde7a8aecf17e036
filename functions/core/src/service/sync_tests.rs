//! sync, history, friends and presence over in-memory ports.

use super::{Caller, REPLY_BUDGET};
use crate::{
    frames::{Conversation, ErrorCode, FriendsOp, GroupOp, SendFrame, ServerFrame, SyncReply, Target},
    ids::{Body, ClientMsgId, ConnectionId, GroupId, GroupName, MessageId},
    jobs::Job,
    model::Mark,
    now_ms,
    ports::MessageStore,
    testing::{TestApp, user as u},
};
use std::collections::HashSet;

/// Everyone is everyone's friend: a group's creator adds its members at once.
fn app(users: &[&str]) -> TestApp {
    TestApp::builder().users(users).all_friends().build()
}

fn caller(user: &str) -> Caller {
    Caller {
        user: u(user),
        connection: ConnectionId::parse(&format!("{user}-conn")).unwrap(),
    }
}

async fn send(app: &TestApp, from: &str, target: Target, cmid: &str, body: &str) -> MessageId {
    let frame = SendFrame {
        client_msg_id: ClientMsgId::parse(cmid).unwrap(),
        target,
        body: Body::parse(body).unwrap(),
        seq: None,
        device: None,
        attachments: Vec::new(),
    };
    app.send(&caller(from), &frame, now_ms(), now_ms() + 5000)
        .await
        .unwrap()
        .message_id
}

async fn index_all(app: &TestApp) {
    for job in app.store.take_stream() {
        app.index_direct(&job).await.unwrap();
    }
}

async fn group(app: &TestApp, owner: &str, members: &[&str]) -> GroupId {
    let op = GroupOp::Create {
        name: GroupName::parse("g").unwrap(),
        members: members.iter().map(|m| u(m)).collect(),
    };
    match app.group_op(&u(owner), &op, now_ms()).await.unwrap() {
        ServerFrame::Group(g) => g.group.id,
        other => panic!("{other:?}"),
    }
}

fn page(f: ServerFrame) -> SyncReply {
    match f {
        ServerFrame::Sync(s) => s,
        other => panic!("{other:?}"),
    }
}

/// Sends `n` one-on-one messages, each a millisecond apart so their order is certain.
async fn many(app: &TestApp, from: &str, to: &str, n: usize, prefix: &str) -> Vec<MessageId> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(
            send(
                app,
                from,
                Target::To(u(to)),
                &format!("{prefix}{i}"),
                &format!("{prefix} {i}"),
            )
            .await,
        );
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    ids
}

#[tokio::test]
async fn a_message_past_its_retention_is_gone_from_sync_and_history_before_the_table_deletes_it() {
    let app = TestApp::builder()
        .users(&["alice", "bob"])
        .all_friends()
        .settings(|s| s.retention_secs = 60)
        .build();
    let g = group(&app, "alice", &["bob"]).await;
    send(&app, "alice", Target::To(u("bob")), "d1", "soon gone").await;
    send(&app, "alice", Target::Group(g.clone()), "g1", "soon gone too").await;
    index_all(&app).await;
    let shown = |f: ServerFrame| match f {
        ServerFrame::Sync(s) => s.messages.len(),
        ServerFrame::History(h) => h.messages.len(),
        other => panic!("{other:?}"),
    };
    let (now, later) = (now_ms(), now_ms() + 61_000);
    for (at, expected) in [(now, 1), (later, 0)] {
        let direct = app
            .history(&u("bob"), &Conversation::With(u("alice")), None, 50, at)
            .await;
        let grouped = app
            .history(&u("bob"), &Conversation::Group(g.clone()), None, 50, at)
            .await;
        assert_eq!(
            (shown(direct.unwrap()), shown(grouped.unwrap())),
            (expected, expected),
            "at {at}"
        );
    }
    assert_eq!(shown(app.sync(&u("bob"), None, now).await.unwrap()), 2);
    let expired = page(app.sync(&u("bob"), None, later).await.unwrap());
    assert!(
        expired.messages.is_empty() && expired.next.is_none(),
        "consumed, not returned"
    );
    assert_eq!(
        app.store.state.lock().unwrap().messages.len(),
        2,
        "still in the table, as on DynamoDB"
    );
}

#[tokio::test]
async fn sync_returns_every_missed_message_once_oldest_first_even_with_acks_between_pages() {
    let app = app(&["alice", "bob"]);
    let g = group(&app, "alice", &["bob"]).await;
    let direct = many(&app, "alice", "bob", 120, "d").await;
    let mut grouped = Vec::new();
    for i in 0..30 {
        grouped.push(send(&app, "alice", Target::Group(g.clone()), &format!("g{i}"), "hi group").await);
    }
    index_all(&app).await;

    let first = page(app.sync(&u("bob"), None, now_ms()).await.unwrap());
    let conversations = first.conversations.clone().unwrap();
    let unread = |c: &Conversation| conversations.iter().find(|x| x.conversation == *c).unwrap().unread;
    assert_eq!(unread(&Conversation::With(u("alice"))), 120);
    assert_eq!(unread(&Conversation::Group(g.clone())), 30);

    let mut seen: Vec<MessageId> = Vec::new();
    let mut reply = first;
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(reply.messages.len() <= 100);
        if pages > 1 {
            assert!(reply.conversations.is_none(), "later pages omit the conversations");
        }
        seen.extend(reply.messages.iter().map(|m| m.message_id));
        // Acks arrive between pages: they must not shift what later pages return.
        let direct_seen: Vec<MessageId> = reply
            .messages
            .iter()
            .filter(|m| matches!(m.target, Target::To(_)))
            .map(|m| m.message_id)
            .collect();
        app.store
            .mark_delivered(&u("bob"), &direct_seen, now_ms())
            .await
            .unwrap();
        match reply.next.clone() {
            Some(c) => reply = page(app.sync(&u("bob"), Some(&c), now_ms()).await.unwrap()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 150, "every message");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 150, "each once");
    let in_order = |ids: &[MessageId]| seen.iter().filter(|s| ids.contains(s)).copied().collect::<Vec<_>>() == ids;
    assert!(in_order(&direct), "one-on-one oldest first");
    assert!(in_order(&grouped), "group messages in sequence");
    assert!(pages >= 2);

    // Acknowledged messages do not come back.
    app.mark_group(&u("bob"), &g, Mark::Ack, 30, 0).await.unwrap();
    let again = page(app.sync(&u("bob"), None, now_ms()).await.unwrap());
    assert!(again.messages.is_empty() && again.next.is_none(), "{again:?}");
}

#[tokio::test]
async fn sync_pages_stay_within_the_reply_budget() {
    let app = app(&["alice", "bob"]);
    for i in 0..20 {
        send(
            &app,
            "alice",
            Target::To(u("bob")),
            &format!("big{i}"),
            &"x".repeat(16384),
        )
        .await;
    }
    let mut total = 0;
    let mut next = None;
    loop {
        let p = page(app.sync(&u("bob"), next.as_deref(), now_ms()).await.unwrap());
        let bytes: usize = p
            .messages
            .iter()
            .map(|m| m.body.as_ref().map_or(0, |b| b.as_str().len()))
            .sum();
        assert!(bytes <= REPLY_BUDGET, "{bytes}");
        assert!(!p.messages.is_empty());
        total += p.messages.len();
        match p.next {
            Some(c) => next = Some(c),
            None => break,
        }
    }
    assert_eq!(total, 20);
}

#[tokio::test]
async fn a_hand_made_cursor_is_a_bad_request_and_even_a_sealed_one_reads_nothing_before_joining() {
    let app = app(&["alice", "bob", "eve"]);
    let g = group(&app, "alice", &["bob"]).await;
    send(&app, "alice", Target::Group(g.clone()), "g1", "secret").await;
    let content = serde_json::json!({"v": 1, "inbox_done": true, "groups": [[g.to_string(), 0, 1]]}).to_string();
    let unsealed = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &content);
    let key = &app.settings.cursor_key;
    let bobs = key.seal("bob", "sync", content.as_bytes());
    for bad in [unsealed.as_str(), &bobs, "???", "eyJ2Ijo5fQ", "bm90IGpzb24", "a.b"] {
        assert_eq!(
            app.sync(&u("eve"), Some(bad), now_ms()).await.unwrap_err().code(),
            ErrorCode::BadRequest,
            "{bad}"
        );
    }
    // Were the key to leak: a sealed cursor still reads only groups the user is in, from where it joined.
    let sealed = key.seal("eve", "sync", content.as_bytes());
    let p = page(app.sync(&u("eve"), Some(&sealed), now_ms()).await.unwrap());
    assert!(p.messages.is_empty() && p.next.is_none(), "eve is not a member");
    let add = GroupOp::Add {
        group: g.clone(),
        user: u("eve"),
    };
    app.group_op(&u("alice"), &add, now_ms()).await.unwrap();
    let p = page(app.sync(&u("eve"), Some(&sealed), now_ms()).await.unwrap());
    assert!(
        p.messages.is_empty() && p.next.is_none(),
        "eve joined after the message: {p:?}"
    );
}

#[tokio::test]
async fn history_pages_walk_back_without_gap_or_repeat_and_show_the_senders_status() {
    let app = app(&["alice", "bob"]);
    let ids = many(&app, "alice", "bob", 120, "h").await;
    index_all(&app).await;
    app.store
        .mark_delivered(&u("bob"), &ids[100..110], now_ms())
        .await
        .unwrap();
    // Bob read up to the 100th message.
    app.read_direct(&u("bob"), &u("alice"), None, now_ms()).await.unwrap();
    let mut before: Option<String> = None;
    let mut walked = Vec::new();
    loop {
        let ServerFrame::History(h) = app
            .history(
                &u("alice"),
                &Conversation::With(u("bob")),
                before.as_deref(),
                50,
                now_ms(),
            )
            .await
            .unwrap()
        else {
            panic!()
        };
        assert!(h.messages.len() <= 50);
        walked.extend(h.messages.iter().map(|m| (m.message_id, m.status)));
        match h.next {
            Some(n) => before = Some(n),
            None => break,
        }
    }
    let walked_ids: Vec<MessageId> = walked.iter().map(|(id, _)| *id).collect();
    let mut expected = ids.clone();
    expected.reverse();
    assert_eq!(walked_ids, expected, "newest first, all 120, no gap or repeat");
    assert!(
        walked
            .iter()
            .all(|(_, s)| *s == Some(crate::frames::MessageStatus::Read)),
        "bob read them all"
    );
    let ServerFrame::History(h) = app
        .history(&u("bob"), &Conversation::With(u("alice")), None, 5, now_ms())
        .await
        .unwrap()
    else {
        panic!()
    };
    assert!(
        h.messages.iter().all(|m| m.status.is_none()),
        "status only on one's own messages"
    );
    let stranger = app
        .history(&u("bob"), &Conversation::With(u("nobody")), None, 5, now_ms())
        .await
        .unwrap_err();
    assert_eq!(stranger.code(), ErrorCode::NotFound);
    assert_eq!(
        app.history(&u("alice"), &Conversation::With(u("bob")), Some("zz"), 5, now_ms())
            .await
            .unwrap_err()
            .code(),
        ErrorCode::BadRequest
    );
}

#[tokio::test]
async fn group_history_is_for_members_from_the_day_they_joined() {
    let app = app(&["ann", "ben", "cat"]);
    let g = group(&app, "ann", &["ben"]).await;
    for i in 0..3 {
        send(&app, "ann", Target::Group(g.clone()), &format!("a{i}"), "early").await;
    }
    app.group_op(
        &u("ann"),
        &GroupOp::Add {
            group: g.clone(),
            user: u("cat"),
        },
        now_ms(),
    )
    .await
    .unwrap();
    send(&app, "ben", Target::Group(g.clone()), "b1", "late").await;
    let seqs = |f: ServerFrame| match f {
        ServerFrame::History(h) => h.messages.iter().map(|m| m.seq.unwrap()).collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        seqs(
            app.history(&u("ben"), &Conversation::Group(g.clone()), None, 50, now_ms())
                .await
                .unwrap()
        ),
        [4, 3, 2, 1]
    );
    assert_eq!(
        seqs(
            app.history(&u("cat"), &Conversation::Group(g.clone()), None, 50, now_ms())
                .await
                .unwrap()
        ),
        [4]
    );
    let before_3 = app.settings.cursor_key.seal("ben", &format!("history:group:{g}"), b"3");
    assert_eq!(
        seqs(
            app.history(
                &u("ben"),
                &Conversation::Group(g.clone()),
                Some(&before_3),
                50,
                now_ms()
            )
            .await
            .unwrap()
        ),
        [2, 1]
    );
    let outsider = app
        .history(&u("alice"), &Conversation::Group(g.clone()), None, 50, now_ms())
        .await;
    assert_eq!(outsider.unwrap_err().code(), ErrorCode::Forbidden);
}

#[tokio::test]
async fn presence_is_pushed_to_online_friends_only_if_the_change_still_holds() {
    let app = app(&["alice", "bob"]);
    super::friends_tests::befriend(&app, "alice", "bob").await;
    app.connect(&u("alice"), &ConnectionId::parse("a1").unwrap(), now_ms())
        .await
        .unwrap();
    run_presence(&app).await;
    let presence = |app: &TestApp| {
        app.pusher
            .posts_to("a1")
            .into_iter()
            .filter(|p| p["type"] == "presence")
            .collect::<Vec<_>>()
    };

    app.connect(&u("bob"), &ConnectionId::parse("b1").unwrap(), now_ms())
        .await
        .unwrap();
    run_presence(&app).await;
    assert_eq!(presence(&app).len(), 1);
    assert_eq!(
        (presence(&app)[0]["user"].as_str(), presence(&app)[0]["status"].as_str()),
        (Some("bob"), Some("online"))
    );

    // A disconnect and a reconnect inside the delay: both events find bob online, as announced: nothing.
    app.drop_connection(&u("bob"), &ConnectionId::parse("b1").unwrap(), now_ms())
        .await
        .unwrap();
    app.connect(&u("bob"), &ConnectionId::parse("b2").unwrap(), now_ms())
        .await
        .unwrap();
    run_presence(&app).await;
    assert_eq!(presence(&app).len(), 1);

    let before = now_ms();
    app.drop_connection(&u("bob"), &ConnectionId::parse("b2").unwrap(), now_ms())
        .await
        .unwrap();
    run_presence(&app).await;
    let pushes = presence(&app);
    assert_eq!(pushes.len(), 2);
    assert_eq!(pushes[1]["status"], "offline");
    assert!(pushes[1]["lastSeen"].as_i64().unwrap() >= before);
    // A redelivered event sends nothing more.
    app.notify_presence(&crate::jobs::PresenceJob { user: u("bob"), at: 0 }, now_ms())
        .await
        .unwrap();
    assert_eq!(presence(&app).len(), 2);
}

#[tokio::test]
async fn a_status_a_friends_reply_showed_before_it_was_announced_is_corrected_even_after_a_flap() {
    let app = app(&["alice", "bob"]);
    app.connect(&u("alice"), &ConnectionId::parse("a1").unwrap(), now_ms())
        .await
        .unwrap();
    super::friends_tests::befriend(&app, "alice", "bob").await;
    run_presence(&app).await;
    // bob comes online; before his presence event runs, alice's list shows him online (current at once)...
    app.connect(&u("bob"), &ConnectionId::parse("b1").unwrap(), now_ms())
        .await
        .unwrap();
    match app.friends_op(&u("alice"), &FriendsOp::List, now_ms()).await.unwrap() {
        ServerFrame::Friends(r) => assert_eq!(r.friends[0].status, Some(crate::frames::Status::Online)),
        other => panic!("{other:?}"),
    }
    // ...and he leaves again inside the delay. Without a correction alice would keep seeing him online.
    app.drop_connection(&u("bob"), &ConnectionId::parse("b1").unwrap(), now_ms())
        .await
        .unwrap();
    run_presence(&app).await;
    let pushes: Vec<_> = app
        .pusher
        .posts_to("a1")
        .into_iter()
        .filter(|p| p["type"] == "presence" && p["user"] == "bob")
        .collect();
    assert_eq!(pushes.len(), 1, "{pushes:?}");
    assert_eq!(pushes[0]["status"], "offline");
    // A flap nobody saw still pushes nothing.
    app.connect(&u("bob"), &ConnectionId::parse("b2").unwrap(), now_ms())
        .await
        .unwrap();
    app.drop_connection(&u("bob"), &ConnectionId::parse("b2").unwrap(), now_ms())
        .await
        .unwrap();
    run_presence(&app).await;
    assert_eq!(
        app.pusher
            .posts_to("a1")
            .into_iter()
            .filter(|p| p["type"] == "presence" && p["user"] == "bob")
            .count(),
        1
    );
}

/// Runs the presence events queued so far, as the delayed queue would deliver them.
async fn run_presence(app: &TestApp) {
    let jobs: Vec<crate::jobs::PresenceJob> = app
        .queue
        .jobs
        .lock()
        .unwrap()
        .drain(..)
        .filter_map(|j| if let Job::Presence(p) = j { Some(p) } else { None })
        .collect();
    for j in jobs {
        app.notify_presence(&j, now_ms()).await.unwrap();
    }
}

/// The message and its mailbox entry are two writes: when the entry's fails, the send is `unavailable` with the
/// message stored. The retry finds the message, and must put the entry so that the offline recipient's sync has
/// it, once; after the recipient acknowledged it, another retry must not put it back.
#[tokio::test]
async fn a_send_whose_mailbox_entry_failed_is_synced_once_after_its_retry() {
    let app = app(&["alice", "bob"]);
    let frame = SendFrame {
        client_msg_id: ClientMsgId::parse("half").unwrap(),
        target: Target::To(u("bob")),
        body: Body::parse("half boxed").unwrap(),
        seq: None,
        device: None,
        attachments: Vec::new(),
    };
    let alice = caller("alice");
    let retry = || app.send(&alice, &frame, now_ms(), now_ms() + 5000);
    app.store.faults.fail_next("mailbox_put", 1);
    let failed = retry().await;
    assert_eq!(failed.unwrap_err().code(), ErrorCode::Unavailable);
    assert_eq!(app.store.state.lock().unwrap().messages.len(), 1, "stored all the same");
    let synced = || async {
        let p = page(app.sync(&u("bob"), None, now_ms()).await.unwrap());
        p.messages.iter().map(|m| m.message_id).collect::<Vec<_>>()
    };
    assert!(synced().await.is_empty(), "not in the mailbox yet");

    let ack = retry().await.unwrap();
    assert_eq!(synced().await, [ack.message_id]);
    app.ack_direct(&u("bob"), &[ack.message_id], now_ms(), now_ms())
        .await
        .unwrap();
    assert_eq!(retry().await.unwrap().message_id, ack.message_id);
    assert!(synced().await.is_empty(), "acknowledged: not back after another retry");
}
