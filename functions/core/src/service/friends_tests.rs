//! The friendship rules on the in-memory fakes: requests and acceptance, decline, withdraw, remove, block and
//! unblock, and what each tells the other user.

use super::Caller;
use crate::{
    frames::{ErrorCode, FriendsOp, SendFrame, ServerFrame, Target},
    ids::{Body, ClientMsgId, ConnectionId},
    model::FriendState,
    now_ms,
    testing::{TestApp, user as u},
};

/// `a` asks, `b` accepts.
pub(super) async fn befriend(app: &TestApp, a: &str, b: &str) {
    for (from, to) in [(a, b), (b, a)] {
        app.friends_op(&u(from), &FriendsOp::Add { user: u(to) }, now_ms())
            .await
            .unwrap();
    }
}

/// (user, state, status) of each entry of a friends reply.
fn entries(f: ServerFrame) -> Vec<(String, FriendState, Option<String>)> {
    match f {
        ServerFrame::Friends(r) => r
            .friends
            .into_iter()
            .map(|e| {
                let status = e.status.map(|s| format!("{s:?}").to_lowercase());
                (e.user.to_string(), e.state, status)
            })
            .collect(),
        other => panic!("{other:?}"),
    }
}

async fn op(app: &TestApp, who: &str, op: FriendsOp) -> Vec<(String, FriendState, Option<String>)> {
    entries(app.friends_op(&u(who), &op, now_ms()).await.unwrap())
}

fn friend_pushes(app: &TestApp, connection: &str) -> Vec<(String, String)> {
    app.pusher
        .posts_to(connection)
        .into_iter()
        .filter(|p| p["type"] == "friend")
        .map(|p| {
            (
                p["user"].as_str().unwrap().to_owned(),
                p["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn online(app: &TestApp, who: &str) {
    let c = ConnectionId::parse(&format!("{who}-1")).unwrap();
    app.connect(&u(who), &c, now_ms()).await.unwrap();
}

#[tokio::test]
async fn a_request_shares_nothing_until_it_is_accepted() {
    let app = TestApp::with_users(&["alice", "bob"]);
    online(&app, "alice").await;
    online(&app, "bob").await;
    let asked = op(&app, "alice", FriendsOp::Add { user: u("bob") }).await;
    assert_eq!(
        asked,
        [("bob".into(), FriendState::Requested, None)],
        "no status before consent"
    );
    assert_eq!(
        op(&app, "bob", FriendsOp::List).await,
        [("alice".into(), FriendState::Incoming, None)]
    );
    assert_eq!(friend_pushes(&app, "bob-1"), [("alice".into(), "incoming".into())]);
    let accepted = op(&app, "bob", FriendsOp::Add { user: u("alice") }).await;
    assert_eq!(accepted, [("alice".into(), FriendState::Friend, Some("online".into()))]);
    assert_eq!(friend_pushes(&app, "alice-1"), [("bob".into(), "friend".into())]);
    assert_eq!(
        op(&app, "alice", FriendsOp::List).await,
        [("bob".into(), FriendState::Friend, Some("online".into()))]
    );
    // Ending it tells the other; both lists are empty.
    assert!(op(&app, "bob", FriendsOp::Remove { user: u("alice") }).await.is_empty());
    assert!(op(&app, "alice", FriendsOp::List).await.is_empty());
    assert_eq!(
        friend_pushes(&app, "alice-1").last().unwrap(),
        &("bob".into(), "removed".into())
    );
}

#[tokio::test]
async fn declining_tells_nothing_and_withdrawing_tells_the_other() {
    let app = TestApp::with_users(&["alice", "bob", "carol"]);
    online(&app, "alice").await;
    online(&app, "carol").await;
    op(&app, "alice", FriendsOp::Add { user: u("bob") }).await;
    assert!(op(&app, "bob", FriendsOp::Remove { user: u("alice") }).await.is_empty());
    assert!(friend_pushes(&app, "alice-1").is_empty(), "declining pushes nothing");
    assert_eq!(
        op(&app, "alice", FriendsOp::List).await,
        [("bob".into(), FriendState::Requested, None)],
        "the requester keeps seeing requested"
    );
    op(&app, "alice", FriendsOp::Add { user: u("carol") }).await;
    op(&app, "alice", FriendsOp::Remove { user: u("carol") }).await;
    assert_eq!(
        friend_pushes(&app, "carol-1"),
        [("alice".into(), "incoming".into()), ("alice".into(), "removed".into())]
    );
    assert!(op(&app, "carol", FriendsOp::List).await.is_empty());
}

#[tokio::test]
async fn a_block_is_never_revealed_and_lets_nothing_through() {
    let app = TestApp::with_users(&["alice", "bob"]);
    online(&app, "alice").await;
    online(&app, "bob").await;
    befriend(&app, "alice", "bob").await;
    let blocked = op(&app, "alice", FriendsOp::Block { user: u("bob") }).await;
    assert_eq!(blocked, [("bob".into(), FriendState::Blocked, None)]);
    // bob's list is as before, but alice shows offline and never seen; no push told him anything.
    assert_eq!(
        op(&app, "bob", FriendsOp::List).await,
        [("alice".into(), FriendState::Friend, Some("offline".into()))]
    );
    assert_eq!(
        friend_pushes(&app, "bob-1"),
        [("alice".into(), "incoming".into())],
        "only alice's request"
    );
    // His message is acked and never delivered; asking again reaches nobody.
    let caller = Caller {
        user: u("bob"),
        connection: ConnectionId::parse("bob-1").unwrap(),
    };
    let frame = SendFrame {
        client_msg_id: ClientMsgId::parse("m1").unwrap(),
        target: Target::To(u("alice")),
        body: Body::parse("hello?").unwrap(),
        seq: None,
        device: None,
        attachments: Vec::new(),
    };
    let first = app.send(&caller, &frame, now_ms(), now_ms() + 5000).await.unwrap();
    let again = app.send(&caller, &frame, now_ms(), now_ms() + 5000).await.unwrap();
    assert_eq!(first.message_id, again.message_id, "a retry gets the same ack");
    assert!(app.pusher.posts_to("alice-1").iter().all(|p| p["type"] != "message"));
    let sync = app.sync(&u("alice"), None, now_ms()).await.unwrap();
    assert!(matches!(sync, ServerFrame::Sync(s) if s.messages.is_empty()));
    op(&app, "bob", FriendsOp::Remove { user: u("alice") }).await;
    op(&app, "bob", FriendsOp::Add { user: u("alice") }).await;
    assert_eq!(
        op(&app, "bob", FriendsOp::List).await,
        [("alice".into(), FriendState::Requested, None)]
    );
    assert_eq!(
        op(&app, "alice", FriendsOp::List).await,
        [("bob".into(), FriendState::Blocked, None)],
        "the request did not reach alice"
    );
    // Unblocking lets the pending request arrive.
    assert_eq!(
        op(&app, "alice", FriendsOp::Unblock { user: u("bob") }).await,
        [("bob".into(), FriendState::Incoming, None)]
    );
    let friends = op(&app, "alice", FriendsOp::Add { user: u("bob") }).await;
    assert_eq!(friends, [("bob".into(), FriendState::Friend, Some("online".into()))]);
}

#[tokio::test]
async fn oneself_unknown_users_and_too_many_rows_are_refused() {
    let app = TestApp::builder()
        .users(&["alice", "bob", "carol"])
        .settings(|s| s.max_friends = 1)
        .build();
    let code = |r: Result<ServerFrame, crate::error::Failure>| r.unwrap_err().code();
    let add = |who: &str| FriendsOp::Add { user: u(who) };
    assert_eq!(
        code(app.friends_op(&u("alice"), &add("alice"), 0).await),
        ErrorCode::BadRequest
    );
    assert_eq!(
        code(app.friends_op(&u("alice"), &add("zed"), 0).await),
        ErrorCode::NotFound
    );
    app.friends_op(&u("alice"), &add("bob"), 0).await.unwrap();
    assert_eq!(
        code(app.friends_op(&u("alice"), &add("carol"), 0).await),
        ErrorCode::Forbidden
    );
}
