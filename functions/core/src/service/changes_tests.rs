//! The rules of `edit`, `delete` and `react` over in-memory ports: the windows, the cap on reactions, retries
//! that change nothing twice, and a backend failure answered `unavailable` then retried.

use crate::{
    error::Failure,
    frames::{DeleteFrame, EditFrame, Emoji, ErrorCode, ReactFrame},
    ids::{Body, MessageId},
    testing::{TestApp, caller, send_frame, user},
};

const T: i64 = 1_800_000_000_000;

async fn sent(app: &TestApp, at: i64) -> MessageId {
    let frame = send_frame(&format!("c{at}"), "bob", "first");
    app.send(&caller("alice", "a1"), &frame, at, at + 10_000)
        .await
        .unwrap()
        .message_id
}

fn edit(id: MessageId, body: &str) -> EditFrame {
    EditFrame {
        message_id: id,
        body: Body::parse(body).unwrap(),
    }
}

fn code(r: Result<(), Failure>) -> Option<ErrorCode> {
    r.err().map(|f| f.code())
}

fn react(id: MessageId, e: &str) -> ReactFrame {
    ReactFrame {
        message_id: id,
        emoji: (!e.is_empty()).then(|| Emoji::parse(e).unwrap()),
    }
}

#[tokio::test]
async fn edits_and_deletes_only_by_the_sender_within_their_windows() {
    let app = TestApp::with_users(&["alice", "bob"]);
    let id = sent(&app, T).await;
    let (alice, bob) = (caller("alice", "a1"), caller("bob", "b1"));
    assert_eq!(
        code(app.edit(&bob, &edit(id, "x"), T + 1).await),
        Some(ErrorCode::Forbidden)
    );
    assert_eq!(
        code(app.edit(&alice, &edit(id, "second"), T + 15 * 60_000).await),
        None,
        "at the window's end"
    );
    assert_eq!(
        code(app.edit(&alice, &edit(id, "third"), T + 15 * 60_000 + 1).await),
        Some(ErrorCode::Forbidden),
        "after it"
    );
    let del = DeleteFrame { message_id: id };
    assert_eq!(code(app.delete(&bob, &del, T + 1).await), Some(ErrorCode::Forbidden));
    assert_eq!(
        code(app.delete(&alice, &del, T + 48 * 3_600_000 + 1).await),
        Some(ErrorCode::Forbidden)
    );
    assert_eq!(code(app.delete(&alice, &del, T + 48 * 3_600_000).await), None);
    let m = app.store.state.lock().unwrap().messages[&id].clone();
    assert!(m.body.is_none() && m.edited_at.is_none(), "{m:?}");
    assert_eq!(
        code(app.delete(&alice, &del, T + 49 * 3_600_000).await),
        None,
        "a retry of a delete"
    );
    assert_eq!(
        code(app.edit(&alice, &edit(id, "back"), T + 2).await),
        Some(ErrorCode::Forbidden)
    );
}

#[tokio::test]
async fn an_edit_that_failed_in_the_backend_is_retried_to_the_same_state() {
    let app = TestApp::with_users(&["alice", "bob"]);
    let id = sent(&app, T).await;
    let alice = caller("alice", "a1");
    app.store.faults.fail_next("follow_previews", 1);
    assert_eq!(
        code(app.edit(&alice, &edit(id, "second"), T + 5).await),
        Some(ErrorCode::Unavailable)
    );
    assert_eq!(code(app.edit(&alice, &edit(id, "second"), T + 9).await), None);
    let m = app.store.state.lock().unwrap().messages[&id].clone();
    assert_eq!(
        (m.body.unwrap().as_str(), m.edited_at),
        ("second", Some(T + 5)),
        "the retry found the edit written and wrote nothing"
    );
}

#[tokio::test]
async fn one_reaction_per_reader_and_at_most_the_cap() {
    let app = TestApp::builder()
        .users(&["alice", "bob"])
        .settings(|s| s.max_reactions = 1)
        .build();
    let id = sent(&app, T).await;
    let (alice, bob) = (caller("alice", "a1"), caller("bob", "b1"));
    assert_eq!(code(app.react(&bob, &react(id, "👍"), T + 1).await), None);
    assert_eq!(
        code(app.react(&bob, &react(id, "❤️"), T + 2).await),
        None,
        "changed, not added"
    );
    assert_eq!(
        code(app.react(&alice, &react(id, "👍"), T + 3).await),
        Some(ErrorCode::Forbidden),
        "the cap"
    );
    assert_eq!(code(app.react(&bob, &react(id, ""), T + 4).await), None);
    assert_eq!(
        code(app.react(&alice, &react(id, "👍"), T + 5).await),
        None,
        "room again"
    );
    let m = app.store.state.lock().unwrap().messages[&id].clone();
    assert_eq!(
        m.to_push_for(&user("alice")).my_reaction.map(|e| e.as_str().to_owned()),
        Some("👍".into())
    );
    assert_eq!(m.reactions.len(), 1);
}
