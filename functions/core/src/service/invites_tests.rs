//! Consent for groups over in-memory ports: friends join at once, everyone else is invited and joins (or
//! declines) by itself; blocks, and the limits on groups per user and creates per hour.

use super::invites::{INVITES_KEPT, consent};
use crate::{
    error::Failure,
    frames::{ErrorCode, GroupOp, ServerFrame},
    ids::{GroupId, GroupName, UserId},
    model::{FriendRow, FriendState},
    now_ms,
    testing::{TestApp, conn, user as u},
};
use std::collections::HashMap;

fn app(users: &[&str]) -> TestApp {
    TestApp::builder().users(users).build()
}

/// `owner`'s row about `other` says `state` (and, for a friendship, the other's row too).
fn relate(app: &TestApp, owner: &str, other: &str, state: FriendState) {
    let mut s = app.store.state.lock().unwrap();
    s.friends.insert((u(owner), u(other)), FriendRow::new(u(other), state));
    if state == FriendState::Friend {
        s.friends.insert((u(other), u(owner)), FriendRow::new(u(owner), state));
    }
}

async fn op(app: &TestApp, caller: &str, op: GroupOp) -> Result<ServerFrame, Failure> {
    app.group_op(&u(caller), &op, now_ms()).await
}

fn create_op(members: &[&str]) -> GroupOp {
    GroupOp::Create {
        name: GroupName::parse("picnic").unwrap(),
        members: members.iter().map(|m| u(m)).collect(),
    }
}

/// The group of a `group` reply, as (id, members, invited).
fn group_of(frame: ServerFrame) -> (GroupId, Vec<String>, Vec<String>) {
    match frame {
        ServerFrame::Group(g) => {
            let names = |v: Vec<UserId>| v.iter().map(|x| x.to_string()).collect();
            (g.group.id, names(g.group.members), names(g.group.invited))
        }
        other => panic!("{other:?}"),
    }
}

fn invites_of(frame: ServerFrame) -> Vec<(String, String)> {
    match frame {
        ServerFrame::Invites(r) => r
            .invites
            .into_iter()
            .map(|i| (i.group.id.to_string(), i.by.to_string()))
            .collect(),
        other => panic!("{other:?}"),
    }
}

fn code(r: Result<ServerFrame, Failure>) -> ErrorCode {
    r.unwrap_err().code()
}

#[test]
fn the_rule_puts_friends_in_invites_the_rest_and_keeps_quiet_about_blockers() {
    let named = [u("ben"), u("cat"), u("dan"), u("eve")];
    let standings = HashMap::from([
        (u("ben"), FriendState::Friend),
        (u("cat"), FriendState::Incoming),
        (u("dan"), FriendState::Blocked),
        (u("eve"), FriendState::Friend),
    ]);
    let c = consent(&named, &standings, &[u("eve")]);
    assert_eq!(c.join, [u("ben")]);
    assert_eq!(
        c.invite,
        [u("cat"), u("eve")],
        "a request is not consent; a full friend is invited"
    );
    assert_eq!(c.silent, [u("dan")]);
    assert_eq!(c.invited(), [u("cat"), u("dan"), u("eve")]);
}

#[tokio::test]
async fn a_stranger_is_invited_not_added_and_joins_or_declines_by_itself() {
    let app = app(&["ann", "ben", "cat", "dan"]);
    relate(&app, "ann", "ben", FriendState::Friend);
    app.connect(&u("cat"), &conn("c1"), now_ms()).await.unwrap();

    let (g, members, invited) = group_of(op(&app, "ann", create_op(&["ben", "cat"])).await.unwrap());
    assert_eq!(
        (members, invited),
        (vec!["ann".into(), "ben".into()], vec!["cat".to_owned()])
    );
    let pushed = app.pusher.posts_to("c1");
    assert_eq!(pushed.len(), 1, "{pushed:?}");
    assert_eq!(
        (
            &pushed[0]["type"],
            &pushed[0]["group"]["id"],
            &pushed[0]["group"]["name"],
            &pushed[0]["by"]
        ),
        (&"invite".into(), &g.to_string().into(), &"picnic".into(), &"ann".into())
    );
    let list = op(&app, "cat", GroupOp::List { cursor: None }).await.unwrap();
    assert!(
        matches!(list, ServerFrame::Groups(ref r) if r.groups.is_empty()),
        "{list:?}"
    );
    let members = GroupOp::Members { group: g.clone() };
    assert_eq!(
        code(op(&app, "cat", members.clone()).await),
        ErrorCode::Forbidden,
        "not a member yet"
    );
    assert_eq!(
        invites_of(op(&app, "cat", GroupOp::Invites).await.unwrap()),
        [(g.to_string(), "ann".to_owned())]
    );

    let join = GroupOp::Join { group: g.clone() };
    assert_eq!(
        code(op(&app, "dan", join.clone()).await),
        ErrorCode::Forbidden,
        "no invitation"
    );
    let (_, members, _) = group_of(op(&app, "cat", join.clone()).await.unwrap());
    assert_eq!(members, ["ann", "ben", "cat"]);
    assert!(invites_of(op(&app, "cat", GroupOp::Invites).await.unwrap()).is_empty());
    assert_eq!(
        code(op(&app, "cat", join).await),
        ErrorCode::Forbidden,
        "an invitation is used once"
    );

    // The owner invites dan later; dan says no.
    let add = GroupOp::Add {
        group: g.clone(),
        user: u("dan"),
    };
    let (_, members, invited) = group_of(op(&app, "ann", add).await.unwrap());
    assert_eq!((members.len(), invited), (3, vec!["dan".to_owned()]));
    let declined = op(&app, "dan", GroupOp::Decline { group: g.clone() }).await.unwrap();
    assert!(invites_of(declined).is_empty());
    assert_eq!(
        code(op(&app, "dan", GroupOp::Join { group: g }).await),
        ErrorCode::Forbidden
    );
}

#[tokio::test]
async fn a_user_who_blocked_the_adder_is_shown_invited_and_told_nothing() {
    let app = app(&["ann", "cat"]);
    relate(&app, "cat", "ann", FriendState::Blocked);
    app.connect(&u("cat"), &conn("c1"), now_ms()).await.unwrap();
    let (g, members, invited) = group_of(op(&app, "ann", create_op(&["cat"])).await.unwrap());
    assert_eq!((members, invited), (vec!["ann".to_owned()], vec!["cat".to_owned()]));
    assert!(app.pusher.posts_to("c1").is_empty());
    assert!(invites_of(op(&app, "cat", GroupOp::Invites).await.unwrap()).is_empty());
    assert_eq!(
        code(op(&app, "cat", GroupOp::Join { group: g }).await),
        ErrorCode::Forbidden
    );
}

#[tokio::test]
async fn creates_per_hour_and_groups_per_user_are_limited() {
    let app = TestApp::builder()
        .users(&["ann", "ben", "cat"])
        .all_friends()
        .settings(|s| {
            s.group_creates_per_hour = 2;
            s.max_groups_per_user = 3;
        })
        .build();
    for _ in 0..2 {
        op(&app, "ann", create_op(&["ben"])).await.unwrap();
    }
    assert_eq!(
        code(op(&app, "ann", create_op(&["ben"])).await),
        ErrorCode::Forbidden,
        "the third this hour"
    );
    // ben is in two groups; cat's third takes him in, a fourth only invites him, and his join is refused.
    op(&app, "cat", create_op(&["ben"])).await.unwrap();
    let (g, members, invited) = group_of(op(&app, "cat", create_op(&["ben"])).await.unwrap());
    assert_eq!((members, invited), (vec!["cat".to_owned()], vec!["ben".to_owned()]));
    assert_eq!(
        code(op(&app, "ben", GroupOp::Join { group: g }).await),
        ErrorCode::Forbidden
    );
    assert_eq!(
        code(op(&app, "ben", create_op(&[])).await),
        ErrorCode::Forbidden,
        "nor may he create one"
    );
}

#[tokio::test]
async fn only_the_newest_invitations_are_kept() {
    let app = TestApp::builder()
        .users(&["ann", "cat"])
        .settings(|s| s.group_creates_per_hour = 0)
        .build();
    let mut groups = Vec::new();
    for i in 0..=INVITES_KEPT as i64 {
        let frame = app
            .group_op(&u("ann"), &create_op(&["cat"]), now_ms() + i)
            .await
            .unwrap();
        groups.push(group_of(frame).0);
    }
    let listed = invites_of(op(&app, "cat", GroupOp::Invites).await.unwrap());
    assert_eq!(listed.len(), INVITES_KEPT);
    assert_eq!(listed[0].0, groups.last().unwrap().to_string(), "newest first");
    assert_eq!(
        code(
            op(
                &app,
                "cat",
                GroupOp::Join {
                    group: groups[0].clone()
                }
            )
            .await
        ),
        ErrorCode::Forbidden,
        "the oldest lapsed"
    );
    op(
        &app,
        "cat",
        GroupOp::Join {
            group: groups[1].clone(),
        },
    )
    .await
    .unwrap();
}
