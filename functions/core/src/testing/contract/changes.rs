//! The contract's cases about changes after a message was sent: edits, deletes, reactions, and the previews
//! that follow them.

use super::*;
use crate::frames::Emoji;

fn emoji(e: &str) -> Emoji {
    Emoji::parse(e).expect("an emoji")
}

pub async fn edits_deletes_and_reactions_change_a_message_once<S: Store>(s: &S) {
    let id = MessageId::generate(T0);
    s.put_message(&message(id, "alice", "bob", "first")).await.unwrap();
    let body = |b: &str| Body::parse(b).unwrap();
    let m = s.edit_message(&id, &body("second"), T0 + 20).await.unwrap().unwrap();
    assert_eq!((m.body.clone(), m.edited_at), (Some(body("second")), Some(T0 + 20)));
    let m = s.edit_message(&id, &body("older"), T0 + 10).await.unwrap().unwrap();
    assert_eq!(
        m.body,
        Some(body("second")),
        "an older edit that lost the race changes nothing"
    );

    let m = s
        .react(&id, &user("bob"), Some(&emoji("👍")), 2, true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.reactions.get(&user("bob")), Some(&emoji("👍")));
    let m = s
        .react(&id, &user("bob"), Some(&emoji("🎉")), 2, true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.reactions.len(), 1, "one per reader: changed");
    s.react(&id, &user("alice"), Some(&emoji("👍")), 2, false)
        .await
        .unwrap();
    let m = s
        .react(&id, &user("carol"), Some(&emoji("👍")), 2, false)
        .await
        .unwrap()
        .unwrap();
    assert!(!m.reactions.contains_key(&user("carol")), "beyond the cap");
    let m = s.react(&id, &user("alice"), None, 2, false).await.unwrap().unwrap();
    assert_eq!(m.reactions.keys().collect::<Vec<_>>(), [&user("bob")], "removed");
    let m = s.react(&id, &user("alice"), None, 2, false).await.unwrap().unwrap();
    assert_eq!(m.reactions.len(), 1, "removing what is not there changes nothing");

    let m = s.delete_message(&id).await.unwrap().unwrap();
    assert!(m.deleted() && m.edited_at.is_none() && m.reactions.is_empty(), "{m:?}");
    assert_eq!(s.get_message(&id).await.unwrap(), Some(m.clone()), "as stored");
    let after = s.edit_message(&id, &body("back"), T0 + 40).await.unwrap().unwrap();
    assert!(after.deleted(), "a deleted message stays deleted");
    let after = s
        .react(&id, &user("bob"), Some(&emoji("👍")), 2, false)
        .await
        .unwrap()
        .unwrap();
    assert!(after.reactions.is_empty(), "no reaction to a deleted message");
    assert_eq!(
        s.delete_message(&id).await.unwrap(),
        Some(m),
        "a repeat changes nothing"
    );

    let none = MessageId::generate(T0 + 1);
    assert_eq!(s.edit_message(&none, &body("x"), T0).await.unwrap(), None);
    assert_eq!(s.delete_message(&none).await.unwrap(), None);
    assert_eq!(
        s.react(&none, &user("bob"), Some(&emoji("👍")), 2, false)
            .await
            .unwrap(),
        None
    );
    assert_eq!(s.react(&none, &user("bob"), None, 2, false).await.unwrap(), None);
    assert_eq!(s.get_message(&none).await.unwrap(), None, "no item was created");
}

/// The preview of `who`'s only conversation, and whether its last message was deleted.
async fn preview<S: Store>(s: &S, who: &str) -> (Option<String>, bool) {
    let sessions = s.sessions(&user(who), 10).await.unwrap();
    let last = sessions[0].last.clone().unwrap();
    (last.preview, last.deleted)
}

pub async fn previews_follow_changes_of_the_message_they_show<S: Store>(s: &S) {
    let first = message(MessageId::generate(T0), "alice", "bob", "first");
    s.put_message(&first).await.unwrap();
    s.index_direct(&index_job(&first), None).await.unwrap();
    let edited = s
        .edit_message(&first.id, &Body::parse("first, edited").unwrap(), T0 + 20)
        .await
        .unwrap()
        .unwrap();
    s.follow_previews(&edited).await.unwrap();
    for who in ["alice", "bob"] {
        assert_eq!(preview(s, who).await, (Some("first, edited".into()), false), "{who}");
    }
    // A follow of an older state (a late retry) does not undo a newer one.
    let mut stale = edited.clone();
    stale.body = Some(Body::parse("stale").unwrap());
    stale.edited_at = Some(T0 + 10);
    s.follow_previews(&stale).await.unwrap();
    assert_eq!(preview(s, "bob").await.0.as_deref(), Some("first, edited"));

    let second = message(MessageId::generate(T0 + 100), "bob", "alice", "second");
    s.put_message(&second).await.unwrap();
    s.index_direct(&index_job(&second), None).await.unwrap();
    let deleted = s.delete_message(&first.id).await.unwrap().unwrap();
    s.follow_previews(&deleted).await.unwrap();
    assert_eq!(
        preview(s, "alice").await,
        (Some("second".into()), false),
        "a preview of another message stays"
    );
    let deleted = s.delete_message(&second.id).await.unwrap().unwrap();
    s.follow_previews(&deleted).await.unwrap();
    for who in ["alice", "bob"] {
        assert_eq!(preview(s, who).await, (None, true), "{who}");
    }
    // Once deleted, an edit that was on its way does not bring a preview back.
    let mut late = second.clone();
    late.edited_at = Some(T0 + 250);
    s.follow_previews(&late).await.unwrap();
    assert_eq!(preview(s, "bob").await, (None, true));
    // The next message replaces the tombstone's marks.
    let third = message(MessageId::generate(T0 + 400), "alice", "bob", "third");
    s.put_message(&third).await.unwrap();
    s.index_direct(&index_job(&third), None).await.unwrap();
    assert_eq!(preview(s, "bob").await, (Some("third".into()), false));

    // A group's preview follows the same way.
    let g = GroupId::generate(T0);
    s.create_group(&group_of(&g, "alice", 1), &[Member::joining(user("alice"), T0, 0)])
        .await
        .unwrap();
    let id = MessageId::generate(T0 + 500);
    let last = LastMessage {
        message_id: id,
        from: user("alice"),
        preview: Some("hello group".into()),
        timestamp: id.timestamp(),
        deleted: false,
    };
    let seq = s.next_seq(&g, &last).await.unwrap();
    let mut m = StoredMessage::new(
        id,
        user("alice"),
        Target::Group(g.clone()),
        Body::parse("hello group").unwrap(),
        ClientMsgId::parse("g1").unwrap(),
    );
    m.seq = seq;
    s.put_message(&m).await.unwrap();
    let group_last = || async { s.membership(&g, &user("alice")).await.unwrap().0.unwrap().last.unwrap() };
    let edited = s
        .edit_message(&id, &Body::parse("hello, group").unwrap(), T0 + 600)
        .await
        .unwrap()
        .unwrap();
    s.follow_previews(&edited).await.unwrap();
    assert_eq!(group_last().await.preview.as_deref(), Some("hello, group"));
    let deleted = s.delete_message(&id).await.unwrap().unwrap();
    s.follow_previews(&deleted).await.unwrap();
    let l = group_last().await;
    assert_eq!((l.preview, l.deleted), (None, true));
}
