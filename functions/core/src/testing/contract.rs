//! The contract of the store ports: what the rules rely on, as cases that run unchanged against any
//! implementation. `tests/tests/contract` runs every case against the in-memory fakes and against the DynamoDB
//! store on an emulator (`contract_suite!`), so a unit test on the fakes proves what DynamoDB does too.
//!
//! Each case takes a fresh, empty store and asserts what a caller of the port would see: conditional writes,
//! idempotency, unread counting, sequences and pagination.

use crate::{
    frames::{LastMessage, Status, Target},
    ids::{Body, ClientMsgId, GroupId, GroupName, MessageId, UserId},
    jobs::IndexJob,
    model::{
        Added, Claim, ClaimKey, FriendRow, FriendState, Group, Invite, Mark, Marked, Member, NewConnection, Opened,
        RowChange, StoredMessage, Transition,
    },
    ports::{Indexed, Store},
    testing::{conn, user},
};

/// Runs every case of the contract against the store `$make` builds (an `async` expression, evaluated once per
/// case): one `#[tokio::test]` per case, named after it.
#[macro_export]
macro_rules! contract_suite {
    ($make:expr) => {
        $crate::contract_suite!(@cases $make;
            claims_are_decided_by_the_first_attempt,
            a_lease_is_taken_over_only_as_it_was_seen,
            messages_are_stored_once_and_acked_only_by_their_recipient,
            the_mailbox_pages_oldest_first_without_gap,
            a_retry_puts_back_only_what_was_never_acknowledged_and_history_sees_what_is_pending,
            indexing_counts_each_message_once_and_keeps_the_newest_preview,
            a_read_zeroes_unread_and_moves_its_mark_only_forward,
            a_read_ahead_of_indexing_is_not_counted_later,
            a_read_vouches_only_for_what_the_reader_received,
            conversation_pages_walk_back_newest_first,
            group_sequences_are_consecutive_and_marks_never_move_back,
            group_history_ranges_and_membership,
            presence_follows_live_connections,
            friend_rows_change_in_pairs_and_frames_are_counted_per_window,
            invitations_list_newest_first_lapse_beyond_the_kept_and_go_once_answered,
            existence_standings_and_group_counts_are_read_for_many_users_at_once,
            edits_deletes_and_reactions_change_a_message_once,
            previews_follow_changes_of_the_message_they_show
        );
    };
    (@cases $make:expr; $($case:ident),*) => {
        $(
            #[tokio::test]
            async fn $case() {
                let store = $make.await;
                $crate::testing::contract::$case(&store).await;
            }
        )*
    };
}

mod changes;
mod mailbox;
mod objects;
mod social;
pub use changes::*;
pub use mailbox::*;
pub use objects::*;
pub use social::*;

const T0: i64 = 1_700_000_000_000;
/// When a read mark of a conversation with no message lapses (epoch seconds): an hour after T0.
const LAPSE: i64 = T0 / 1000 + 3_600;

fn message(id: MessageId, from: &str, to: &str, body: &str) -> StoredMessage {
    StoredMessage::new(
        id,
        user(from),
        Target::To(user(to)),
        Body::parse(body).expect("a body"),
        ClientMsgId::parse(&format!("c{}", id.timestamp())).expect("a client id"),
    )
}

fn index_job(m: &StoredMessage) -> IndexJob {
    let Target::To(to) = &m.target else {
        unreachable!("one-on-one messages only")
    };
    IndexJob::new(m, to)
}

fn claim(at: i64, lease_until: i64) -> Claim {
    Claim {
        message_id: MessageId::generate(at),
        lease_until,
        done: false,
        seq: None,
        target: Some(Target::To(user("bob"))),
    }
}

pub async fn claims_are_decided_by_the_first_attempt<S: Store>(s: &S) {
    let key = ClaimKey::new(&user("alice"), &ClientMsgId::parse("m1").unwrap());
    let first = claim(T0, T0 + 8_000);
    assert_eq!(s.claim(&key, &first, 1).await.unwrap(), None, "the first claim wins");
    let second = claim(T0 + 1, T0 + 9_000);
    assert_eq!(
        s.claim(&key, &second, 1).await.unwrap(),
        Some(first.clone()),
        "a second attempt gets the first one's claim"
    );
    let read = s.read_claim(&key).await.unwrap().unwrap();
    assert_eq!(
        (read.message_id, read.done, read.seq, &read.target),
        (first.message_id, false, None, &first.target),
        "the claim remembers its conversation"
    );
    s.forget(&key, &second).await.unwrap();
    assert!(
        s.read_claim(&key).await.unwrap().is_some(),
        "forgetting another attempt's claim leaves it"
    );
    s.forget(&key, &first).await.unwrap();
    assert_eq!(s.read_claim(&key).await.unwrap(), None, "its own attempt forgets it");
    let other = ClaimKey::new(&user("bob"), &ClientMsgId::parse("m1").unwrap());
    let to_group = Claim {
        target: Some(Target::Group(GroupId::parse("g1").unwrap())),
        ..second.clone()
    };
    assert_eq!(
        s.claim(&other, &to_group, 1).await.unwrap(),
        None,
        "keys are per sender"
    );
    assert_eq!(s.read_claim(&other).await.unwrap(), Some(to_group), "a group claim too");
}

pub async fn a_lease_is_taken_over_only_as_it_was_seen<S: Store>(s: &S) {
    let key = ClaimKey::new(&user("alice"), &ClientMsgId::parse("m2").unwrap());
    let first = claim(T0, 100);
    s.claim(&key, &first, 1).await.unwrap();
    let stale = Claim {
        lease_until: 99,
        ..first.clone()
    };
    assert!(
        !s.take_over(&key, &stale, 500).await.unwrap(),
        "a lease seen wrong is not taken"
    );
    assert!(s.take_over(&key, &first, 500).await.unwrap());
    assert!(
        !s.take_over(&key, &first, 600).await.unwrap(),
        "the same lease is taken once"
    );
    s.release(&key, 499).await.unwrap();
    assert_eq!(
        s.read_claim(&key).await.unwrap().unwrap().lease_until,
        500,
        "only the holder releases"
    );
    s.release(&key, 500).await.unwrap();
    assert_eq!(s.read_claim(&key).await.unwrap().unwrap().lease_until, 0);
    // Claims marked done by earlier releases (sends no longer write the mark) are final.
    let key = ClaimKey::new(&user("alice"), &ClientMsgId::parse("m3").unwrap());
    let done = Claim {
        done: true,
        seq: Some(7),
        ..claim(T0, 100)
    };
    s.claim(&key, &done, 1).await.unwrap();
    let seen = s.read_claim(&key).await.unwrap().unwrap();
    assert_eq!((seen.done, seen.seq), (true, Some(7)));
    assert!(
        !s.take_over(&key, &seen, 900).await.unwrap(),
        "a done claim is never taken over"
    );
}

pub async fn messages_are_stored_once_and_acked_only_by_their_recipient<S: Store>(s: &S) {
    let id = MessageId::generate(T0);
    let m = message(id, "alice", "bob", "first");
    assert_eq!(s.put_message(&m).await.unwrap(), None);
    let retry = message(id, "alice", "bob", "a retry's other body");
    assert_eq!(
        s.put_message(&retry).await.unwrap(),
        Some(m.clone()),
        "the stored message wins"
    );
    assert_eq!(s.get_message(&id).await.unwrap(), Some(m.clone()));
    assert!(
        s.mark_delivered(&user("carol"), &[id], T0 + 5)
            .await
            .unwrap()
            .is_empty()
    );
    let unknown = MessageId::generate(T0 + 1);
    let acked = s.mark_delivered(&user("bob"), &[id, unknown], T0 + 5).await.unwrap();
    assert_eq!(acked.len(), 1, "an unknown id acks nothing");
    assert_eq!((acked[0].id, acked[0].delivered_at), (id, T0 + 5));
    assert_eq!(acked[0].from, user("alice"), "whose receipt it is");
    let again = s.mark_delivered(&user("bob"), &[id], T0 + 9).await.unwrap();
    assert_eq!(again[0].delivered_at, T0 + 5, "the first ack's time stays");
    assert!(
        s.inbox(&user("bob"), None, 10).await.unwrap().0.is_empty(),
        "acked: out of the mailbox"
    );
}

pub async fn the_mailbox_pages_oldest_first_without_gap<S: Store>(s: &S) {
    let ids: Vec<MessageId> = (0..5).map(|i| MessageId::generate(T0 + i * 10)).collect();
    for id in ids.iter().rev() {
        s.put_message(&message(*id, "alice", "bob", "hi")).await.unwrap();
    }
    s.put_message(&message(MessageId::generate(T0 + 3), "bob", "alice", "not bob's"))
        .await
        .unwrap();
    let (page, more) = s.inbox(&user("bob"), None, 2).await.unwrap();
    assert_eq!(page.iter().map(|m| m.id).collect::<Vec<_>>(), ids[..2], "oldest first");
    assert!(more);
    let (page, more) = s.inbox(&user("bob"), Some(&ids[1]), 3).await.unwrap();
    assert_eq!(page.iter().map(|m| m.id).collect::<Vec<_>>(), ids[2..]);
    assert!(!more, "the last page says so");
}

pub async fn indexing_counts_each_message_once_and_keeps_the_newest_preview<S: Store>(s: &S) {
    let older = message(MessageId::generate(T0), "alice", "bob", "older");
    let newer = message(MessageId::generate(T0 + 100), "alice", "bob", "newer");
    assert!(!s.indexed(&index_job(&newer)).await.unwrap(), "not indexed yet");
    s.index_direct(&index_job(&newer), None).await.unwrap();
    assert!(s.indexed(&index_job(&newer)).await.unwrap());
    assert!(
        !s.indexed(&index_job(&older)).await.unwrap(),
        "another message of the conversation is not"
    );
    s.index_direct(&index_job(&newer), None).await.unwrap();
    assert_eq!(unread(s, "bob", "alice").await, 1, "a redelivered job counts nothing");
    s.index_direct(&index_job(&older), None).await.unwrap();
    let bob = s.session(&user("bob"), &user("alice")).await.unwrap().unwrap();
    assert_eq!(unread(s, "bob", "alice").await, 2, "an older message still counts");
    assert_eq!(bob.last.as_ref().and_then(|l| l.preview.as_deref()), Some("newer"));
    assert_eq!(bob.last_recv_ts, Some(newer.timestamp()));
    let alice = s.session(&user("alice"), &user("bob")).await.unwrap().unwrap();
    assert_eq!(
        unread(s, "alice", "bob").await,
        0,
        "one's own messages are never unread"
    );
    assert_eq!(alice.last.map(|l| l.message_id), Some(newer.id));
    let sessions = s.sessions(&user("bob"), 10).await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].peer, Some(user("alice")));
}

/// `owner`'s unread count with `peer` as a sync lists it (`sessions` counts it; `session` does not).
async fn unread<S: Store>(s: &S, owner: &str, peer: &str) -> u64 {
    let sessions = s.sessions(&user(owner), 100).await.unwrap();
    let with_peer = sessions.into_iter().find(|x| x.peer == Some(user(peer)));
    with_peer.map_or(0, |x| x.unread)
}

pub async fn a_read_zeroes_unread_and_moves_its_mark_only_forward<S: Store>(s: &S) {
    assert_eq!(
        s.read_direct(&user("bob"), &user("alice"), None, LAPSE).await.unwrap(),
        None,
        "nothing to read"
    );
    let a = message(MessageId::generate(T0), "alice", "bob", "a");
    let b = message(MessageId::generate(T0 + 50), "alice", "bob", "b");
    for m in [&a, &b] {
        s.index_direct(&index_job(m), None).await.unwrap();
    }
    assert_eq!(
        s.read_direct(&user("bob"), &user("alice"), None, LAPSE).await.unwrap(),
        Some(b.timestamp()),
        "read up to the newest received"
    );
    let bob = s.session(&user("bob"), &user("alice")).await.unwrap().unwrap();
    assert_eq!(bob.last_read_ts, Some(b.timestamp()));
    assert_eq!(unread(s, "bob", "alice").await, 0);
    assert_eq!(
        s.read_direct(&user("bob"), &user("alice"), None, LAPSE).await.unwrap(),
        None,
        "read already"
    );
    assert_eq!(
        s.read_direct(&user("bob"), &user("alice"), Some(a.timestamp()), LAPSE)
            .await
            .unwrap(),
        None,
        "a mark never moves back"
    );
}

pub async fn a_read_ahead_of_indexing_is_not_counted_later<S: Store>(s: &S) {
    let shown = message(
        MessageId::generate(T0 + 10),
        "alice",
        "bob",
        "shown before it was indexed",
    );
    assert_eq!(
        s.read_direct(&user("bob"), &user("alice"), Some(shown.timestamp()), LAPSE)
            .await
            .unwrap(),
        None,
        "no receipt for a message the store does not know yet"
    );
    assert!(
        s.sessions(&user("bob"), 10).await.unwrap().is_empty(),
        "a mark is not a conversation"
    );
    assert_eq!(
        s.index_direct(&index_job(&shown), None).await.unwrap(),
        Indexed::ReadAhead,
        "its receipt is owed"
    );
    assert_eq!(
        s.index_direct(&index_job(&shown), None).await.unwrap(),
        Indexed::Done,
        "owed once"
    );
    let later = message(MessageId::generate(T0 + 20), "alice", "bob", "after the read");
    assert_eq!(s.index_direct(&index_job(&later), None).await.unwrap(), Indexed::Done);
    let bob = s.session(&user("bob"), &user("alice")).await.unwrap().unwrap();
    assert_eq!(
        unread(s, "bob", "alice").await,
        1,
        "only the message after the read mark counts"
    );
    assert_eq!(bob.last.and_then(|l| l.preview), Some("after the read".to_owned()));
}

pub async fn a_read_vouches_only_for_what_the_reader_received<S: Store>(s: &S) {
    assert_eq!(
        s.read_direct(&user("mallory"), &user("bob"), Some(T0), LAPSE)
            .await
            .unwrap(),
        None
    );
    assert!(
        s.sessions(&user("mallory"), 10).await.unwrap().is_empty(),
        "nothing shows"
    );
    assert!(s.session(&user("mallory"), &user("bob")).await.unwrap().is_none());
    let m = message(MessageId::generate(T0 + 10), "alice", "bob", "to bob");
    s.index_direct(&index_job(&m), None).await.unwrap();
    assert_eq!(
        s.read_direct(&user("alice"), &user("bob"), Some(T0 + 100), LAPSE)
            .await
            .unwrap(),
        None,
        "alice sent, she received nothing from bob"
    );
    assert_eq!(
        s.read_direct(&user("bob"), &user("alice"), Some(T0 + 100), LAPSE)
            .await
            .unwrap(),
        Some(m.timestamp()),
        "a mark past the newest received vouches for the newest received"
    );
    let bob = s.session(&user("bob"), &user("alice")).await.unwrap().unwrap();
    assert_eq!(bob.last_read_ts, Some(T0 + 100));
    assert_eq!(unread(s, "bob", "alice").await, 0);
    assert_eq!(
        s.read_direct(&user("bob"), &user("alice"), None, LAPSE).await.unwrap(),
        None,
        "a read without upTo never moves a mark back"
    );
    let bob = s.session(&user("bob"), &user("alice")).await.unwrap().unwrap();
    assert_eq!(bob.last_read_ts, Some(T0 + 100));
}

pub async fn conversation_pages_walk_back_newest_first<S: Store>(s: &S) {
    let mut ids = Vec::new();
    for i in 0..5 {
        let (from, to) = if i % 2 == 0 { ("alice", "bob") } else { ("bob", "alice") };
        let m = message(MessageId::generate(T0 + i * 10), from, to, "x");
        s.put_message(&m).await.unwrap();
        s.index_direct(&index_job(&m), None).await.unwrap();
        ids.push(m.id);
    }
    let other = message(MessageId::generate(T0 + 5), "carol", "alice", "another conversation");
    s.put_message(&other).await.unwrap();
    s.index_direct(&index_job(&other), None).await.unwrap();
    let page = s.conversation(&user("alice"), &user("bob"), None, 3).await.unwrap();
    assert_eq!(page.ids, [ids[4], ids[3], ids[2]]);
    assert!(page.more);
    let page = s
        .conversation(&user("alice"), &user("bob"), Some(&ids[2]), 3)
        .await
        .unwrap();
    assert_eq!(page.ids, [ids[1], ids[0]]);
    assert!(!page.more);
    let page = s.conversation(&user("bob"), &user("alice"), None, 5).await.unwrap();
    assert_eq!(
        page.ids,
        [ids[4], ids[3], ids[2], ids[1], ids[0]],
        "the same conversation from bob"
    );
    assert!(!page.more);
    let bodies = s.messages(&[ids[0], ids[0], other.id]).await.unwrap();
    assert_eq!(bodies.len(), 2, "bodies by id, each once");
}

fn group_of(id: &GroupId, owner: &str, members: u64) -> Group {
    Group {
        id: id.clone(),
        name: GroupName::parse("Team").unwrap(),
        owner: user(owner),
        created_at: T0,
        last_seq: 0,
        member_count: members,
        last: None,
    }
}

pub async fn group_sequences_are_consecutive_and_marks_never_move_back<S: Store>(s: &S) {
    let g = GroupId::generate(T0);
    let members = [
        Member::joining(user("alice"), T0, 0),
        Member::joining(user("bob"), T0, 0),
    ];
    s.create_group(&group_of(&g, "alice", 2), &members).await.unwrap();
    let mut seqs = Vec::new();
    for i in 0..3 {
        let last = LastMessage {
            message_id: MessageId::generate(T0 + i),
            from: user("alice"),
            preview: Some(format!("m{i}")),
            deleted: false,
            timestamp: T0 + i,
        };
        seqs.push(s.next_seq(&g, &last).await.unwrap());
    }
    assert_eq!(seqs, [Some(1), Some(2), Some(3)]);
    let (group, member) = s.membership(&g, &user("bob")).await.unwrap();
    let group = group.unwrap();
    assert_eq!(
        (group.last_seq, group.last.map(|l| l.preview)),
        (3, Some(Some("m2".to_owned())))
    );
    assert_eq!(member.map(|m| m.last_read_seq), Some(0));
    let missing = GroupId::generate(T0 + 1);
    let last = LastMessage {
        message_id: MessageId::generate(T0),
        from: user("alice"),
        preview: Some(String::new()),
        deleted: false,
        timestamp: T0,
    };
    assert_eq!(s.next_seq(&missing, &last).await.unwrap(), None, "no group, no number");
    assert_eq!(s.mark(&g, &user("bob"), Mark::Read, 2).await.unwrap(), Marked::Moved);
    assert_eq!(
        s.mark(&g, &user("bob"), Mark::Read, 1).await.unwrap(),
        Marked::Unchanged
    );
    assert_eq!(
        s.mark(&g, &user("carol"), Mark::Ack, 1).await.unwrap(),
        Marked::NotMember
    );
    let (_, bob) = s.membership(&g, &user("bob")).await.unwrap();
    assert_eq!(bob.map(|m| (m.last_read_seq, m.last_ack_seq)), Some((2, 0)));
}

pub async fn group_history_ranges_and_membership<S: Store>(s: &S) {
    let g = GroupId::generate(T0);
    s.create_group(&group_of(&g, "alice", 1), &[Member::joining(user("alice"), T0, 0)])
        .await
        .unwrap();
    let mut ids = Vec::new();
    for seq in 1..=5 {
        let m = StoredMessage {
            seq: Some(seq),
            target: Target::Group(g.clone()),
            ..message(MessageId::generate(T0 + seq as i64), "alice", "bob", "g")
        };
        s.record_group_message(&m).await.unwrap();
        ids.push(m.id);
    }
    assert_eq!(
        (s.recorded_at(&g, 3).await.unwrap(), s.recorded_at(&g, 6).await.unwrap()),
        (Some(ids[2]), None),
        "a row is read by its number (a group send's done mark)"
    );
    let seqs = |v: Vec<crate::model::GroupEntry>| v.into_iter().map(|e| e.seq).collect::<Vec<_>>();
    assert_eq!(seqs(s.group_entries(&g, 1, 4, 10).await.unwrap()), [2, 3, 4]);
    assert_eq!(seqs(s.group_entries(&g, 0, 5, 2).await.unwrap()), [1, 2]);
    assert_eq!(
        seqs(s.group_entries_before(&g, 5, 1, 10).await.unwrap()),
        [4, 3, 2],
        "newest first, above the floor"
    );
    assert!(s.group_entries(&g, 5, 5, 10).await.unwrap().is_empty());
    assert_eq!(
        s.add_member(&g, &Member::joining(user("bob"), T0, 5), 2).await.unwrap(),
        Added::Added
    );
    assert_eq!(
        s.add_member(&g, &Member::joining(user("bob"), T0, 5), 3).await.unwrap(),
        Added::AlreadyMember
    );
    assert_eq!(
        s.add_member(&g, &Member::joining(user("carol"), T0, 5), 2)
            .await
            .unwrap(),
        Added::Full
    );
    let nowhere = GroupId::generate(T0 + 1);
    assert_eq!(
        s.add_member(&nowhere, &Member::joining(user("carol"), T0, 0), 9)
            .await
            .unwrap(),
        Added::NoGroup
    );
    // bob joined at sequence 5: a message of sequence 5 or earlier does not go to him.
    let mut ids = s.recipients(&g, 6).await.unwrap();
    ids.sort();
    assert_eq!(ids, [user("alice"), user("bob")]);
    assert_eq!(s.recipients(&g, 5).await.unwrap(), [user("alice")]);
    let of_bob = s.groups_of(&user("bob")).await.unwrap();
    assert_eq!(of_bob.len(), 1);
    assert_eq!((of_bob[0].0.member_count, of_bob[0].1.joined_seq), (2, 5));
    assert!(s.remove_member(&g, &user("bob")).await.unwrap());
    assert!(!s.remove_member(&g, &user("bob")).await.unwrap(), "removed once");
    assert!(s.groups_of(&user("bob")).await.unwrap().is_empty());
    assert!(s.transfer(&g, &user("alice"), &user("bob")).await.unwrap());
    assert!(
        !s.transfer(&g, &user("alice"), &user("carol")).await.unwrap(),
        "only from the owner"
    );
    let member = s.memberships(&user("alice"), &[g.clone(), nowhere]).await.unwrap();
    assert_eq!(member.keys().collect::<Vec<_>>(), [&g]);
}
