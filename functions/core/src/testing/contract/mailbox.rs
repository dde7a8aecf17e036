//! The contract's cases about the mailbox beyond sending and paging: what a retry may put back, and what
//! history asks of it.

use super::*;
use std::collections::HashSet;

pub async fn a_retry_puts_back_only_what_was_never_acknowledged_and_history_sees_what_is_pending<S: Store>(s: &S) {
    let (first, second) = (MessageId::generate(T0), MessageId::generate(T0 + 10));
    let a = message(first, "alice", "bob", "one");
    s.put_message(&a).await.unwrap();
    s.put_message(&message(second, "alice", "bob", "two")).await.unwrap();
    let pending = |ids: &[MessageId]| ids.iter().copied().collect::<HashSet<_>>();
    let inbox = || async {
        s.inbox(&user("bob"), None, 10)
            .await
            .unwrap()
            .0
            .iter()
            .map(|m| m.id)
            .collect::<Vec<_>>()
    };

    let bob = user("bob");
    assert_eq!(
        s.stored_direct(&first, &bob).await.unwrap(),
        Some(crate::model::FoundDirect {
            message: a.clone(),
            put_back: false
        }),
        "a retry finds it, its row there"
    );
    assert_eq!(inbox().await, [first, second], "still pending, once");
    let unknown = MessageId::generate(T0 + 5);
    let asked = [first, second, unknown];
    assert_eq!(
        s.undelivered(&user("bob"), &asked).await.unwrap(),
        pending(&[first, second])
    );
    assert!(
        s.undelivered(&user("alice"), &asked).await.unwrap().is_empty(),
        "none of them is alice's to acknowledge"
    );

    s.mark_delivered(&user("bob"), &[first], T0 + 20).await.unwrap();
    let found = s.stored_direct(&first, &bob).await.unwrap().map(|f| f.put_back);
    assert_eq!(found, Some(false));
    assert_eq!(inbox().await, [second], "acknowledged: a retry does not put it back");
    assert_eq!(s.undelivered(&user("bob"), &asked).await.unwrap(), pending(&[second]));
    let again = s.mark_delivered(&user("bob"), &[first], T0 + 30).await.unwrap();
    assert_eq!(again[0].delivered_at, T0 + 20, "the first ack's time stays");
    assert!(s.undelivered(&user("bob"), &[]).await.unwrap().is_empty());
}
