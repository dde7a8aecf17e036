//! The contract's cases about people: presence and connections, friendships, counters, invitations.

use super::*;

pub async fn presence_follows_live_connections<S: Store>(s: &S) {
    let now = T0;
    let open = |c: &str, expires_at: i64| NewConnection {
        id: conn(c),
        user: user("alice"),
        connected_at: now,
        expires_at,
    };
    s.register(&user("alice"), now).await.unwrap();
    let live = now / 1000 + 3600;
    assert_eq!(
        s.open(&open("c1", live), 2).await.unwrap(),
        Opened::Open(Transition::CameOnline)
    );
    assert_eq!(
        s.open(&open("c2", live), 2).await.unwrap(),
        Opened::Open(Transition::Unchanged)
    );
    assert_eq!(s.open(&open("c3", live), 2).await.unwrap(), Opened::Full, "two at most");
    assert_eq!(
        s.open(&open("c2", live), 2).await.unwrap(),
        Opened::Open(Transition::Unchanged),
        "the same connection again takes no more room"
    );
    let found = s.lookup(&[user("alice"), user("nobody")], &[]).await.unwrap();
    assert_eq!(
        found.keys().collect::<Vec<_>>(),
        [&user("alice")],
        "unknown users are left out"
    );
    assert_eq!(found[&user("alice")].live(now).count(), 2);
    assert_eq!(
        s.close_gone(&user("alice"), &conn("c1"), now, live).await.unwrap(),
        Transition::Unchanged,
        "a connection younger than the grace period stays"
    );
    assert_eq!(
        s.presence(&[user("alice")]).await.unwrap()[&user("alice")]
            .live(now)
            .count(),
        2
    );
    assert_eq!(
        s.close(&user("alice"), &conn("c1"), now + 1).await.unwrap(),
        Transition::Unchanged
    );
    assert_eq!(
        s.close_gone(&user("alice"), &conn("c2"), now + 2, live + 1)
            .await
            .unwrap(),
        Transition::WentOffline
    );
    let p = s
        .presence(&[user("alice")])
        .await
        .unwrap()
        .remove(&user("alice"))
        .unwrap();
    assert_eq!((p.status(now + 3), p.last_seen), (Status::Offline, Some(now + 2)));
    s.set_announced(&user("alice"), Status::Offline).await.unwrap();
    s.mark_exposed(&user("alice")).await.unwrap();
    let p = s
        .presence(&[user("alice")])
        .await
        .unwrap()
        .remove(&user("alice"))
        .unwrap();
    assert_eq!((p.announced, p.exposed), (Some(Status::Offline), true));
    s.set_announced(&user("alice"), Status::Online).await.unwrap();
    let p = s
        .presence(&[user("alice")])
        .await
        .unwrap()
        .remove(&user("alice"))
        .unwrap();
    assert_eq!(
        (p.announced, p.exposed),
        (Some(Status::Online), false),
        "announcing clears the mark"
    );

    // Whether the user has a device: unknown until marked; `false` only while unknown, `true` always, so a
    // device registered after a notification found none is never hidden by that notification's late mark.
    assert_eq!(p.devices, None);
    let devices = |who: &'static str| async move {
        s.presence_latest(&[user(who)])
            .await
            .unwrap()
            .remove(&user(who))
            .and_then(|p| p.devices)
    };
    s.mark_devices(&user("alice"), false).await.unwrap();
    assert_eq!(devices("alice").await, Some(false));
    s.mark_devices(&user("alice"), true).await.unwrap();
    s.mark_devices(&user("alice"), false).await.unwrap();
    assert_eq!(devices("alice").await, Some(true));
    s.mark_devices(&user("nobody"), true).await.unwrap();
    assert_eq!(
        devices("nobody").await,
        None,
        "no presence item is made for a user who never connected"
    );

    // Connections that vanished without `$disconnect` stop counting once they expire.
    let dora = |c: &str, at: i64, expires_at: i64| NewConnection {
        id: conn(c),
        user: user("dora"),
        connected_at: at,
        expires_at,
    };
    s.register(&user("dora"), now).await.unwrap();
    for c in ["d1", "d2"] {
        assert!(matches!(s.open(&dora(c, now, live), 2).await.unwrap(), Opened::Open(_)));
    }
    assert_eq!(s.open(&dora("d3", now, live), 2).await.unwrap(), Opened::Full);
    let later = (live + 10) * 1000;
    assert_eq!(
        s.open(&dora("d3", later, live + 3600), 2).await.unwrap(),
        Opened::Open(Transition::CameOnline),
        "the two expired ones make room"
    );
    let p = s
        .presence_latest(&[user("dora")])
        .await
        .unwrap()
        .remove(&user("dora"))
        .unwrap();
    assert_eq!(p.live(later).map(|c| c.as_str()).collect::<Vec<_>>(), ["d3"]);
}

pub async fn friend_rows_change_in_pairs_and_frames_are_counted_per_window<S: Store>(s: &S) {
    let (alice, bob, carol) = (user("alice"), user("bob"), user("carol"));
    let row = |u: &UserId, state| FriendRow::new(u.clone(), state);
    assert_eq!(s.relation(&alice, &bob).await.unwrap(), (None, None));
    s.set_relation(
        &alice,
        &bob,
        RowChange::Put(row(&bob, FriendState::Requested)),
        RowChange::Put(row(&alice, FriendState::Incoming)),
        T0,
    )
    .await
    .unwrap();
    assert_eq!(
        s.relation(&bob, &alice).await.unwrap(),
        (
            Some(row(&alice, FriendState::Incoming)),
            Some(row(&bob, FriendState::Requested))
        )
    );
    let muted = FriendRow {
        muted: true,
        ..row(&bob, FriendState::Requested)
    };
    s.set_relation(
        &bob,
        &alice,
        RowChange::Put(row(&alice, FriendState::Blocked)),
        RowChange::Put(muted.clone()),
        T0,
    )
    .await
    .unwrap();
    assert_eq!(s.standing(&bob, &alice).await.unwrap(), Some(FriendState::Blocked));
    assert_eq!(s.standing(&alice, &bob).await.unwrap(), Some(FriendState::Requested));
    assert_eq!(s.standing(&alice, &user("carol")).await.unwrap(), None);
    assert_eq!(
        s.friends_of(&alice).await.unwrap(),
        [muted],
        "the muted flag round-trips"
    );
    s.set_relation(
        &alice,
        &carol,
        RowChange::Put(row(&carol, FriendState::Friend)),
        RowChange::Keep,
        T0,
    )
    .await
    .unwrap();
    assert_eq!(s.relation(&alice, &carol).await.unwrap().1, None, "Keep writes nothing");
    let of_alice: Vec<UserId> = s
        .friends_of(&alice)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.user)
        .collect();
    assert_eq!(of_alice, [bob.clone(), carol.clone()], "in user id order");
    s.set_relation(&bob, &alice, RowChange::Delete, RowChange::Delete, T0)
        .await
        .unwrap();
    assert_eq!(s.relation(&alice, &bob).await.unwrap(), (None, None));
    let c = user("alice");
    let counts = [
        s.count_frame(&c, 7, 0).await.unwrap(),
        s.count_frame(&c, 7, 0).await.unwrap(),
        s.count_frame(&c, 8, 0).await.unwrap(),
    ];
    assert_eq!(counts, [1, 2, 1]);
}

pub async fn invitations_list_newest_first_lapse_beyond_the_kept_and_go_once_answered<S: Store>(s: &S) {
    let cat = user("cat");
    let invite = |i: i64| Invite {
        user: cat.clone(),
        group: GroupId::generate(T0 + i),
        name: GroupName::parse(&format!("g{i}")).unwrap(),
        by: user("ann"),
        created_at: T0 + i,
    };
    let sent: Vec<Invite> = (0..4).map(invite).collect();
    for i in &sent {
        s.invite(i, LAPSE).await.unwrap();
    }
    s.invite(&sent[1], LAPSE).await.unwrap();
    let listed = s.invites(&cat, 3).await.unwrap();
    assert_eq!(
        listed,
        [sent[3].clone(), sent[2].clone(), sent[1].clone()],
        "newest first, each once"
    );
    assert!(s.invites(&user("ann"), 3).await.unwrap().is_empty(), "per invited user");
    assert_eq!(
        s.invitation(&cat, &sent[1].group, 3).await.unwrap(),
        Some(sent[1].clone())
    );
    assert_eq!(
        s.invitation(&cat, &sent[0].group, 3).await.unwrap(),
        None,
        "not among the newest three: lapsed"
    );
    s.drop_invite(&cat, &sent[3].group).await.unwrap();
    s.drop_invite(&cat, &sent[3].group).await.unwrap();
    assert_eq!(s.invitation(&cat, &sent[3].group, 3).await.unwrap(), None);
    assert_eq!(
        s.invitation(&cat, &sent[0].group, 3).await.unwrap(),
        Some(sent[0].clone()),
        "one answered, the oldest is among the newest three again"
    );
}

pub async fn existence_standings_and_group_counts_are_read_for_many_users_at_once<S: Store>(s: &S) {
    let (ann, ben, cat, dan) = (user("ann"), user("ben"), user("cat"), user("dan"));
    s.set_relation(
        &ben,
        &ann,
        RowChange::Put(FriendRow::new(ann.clone(), FriendState::Friend)),
        RowChange::Put(FriendRow::new(ben.clone(), FriendState::Friend)),
        T0,
    )
    .await
    .unwrap();
    s.set_relation(
        &cat,
        &ann,
        RowChange::Put(FriendRow::new(ann.clone(), FriendState::Blocked)),
        RowChange::Keep,
        T0,
    )
    .await
    .unwrap();
    for u in [&ann, &ben] {
        s.register(u, T0).await.unwrap();
    }
    assert_eq!(
        s.existing(&[ann.clone(), ben.clone(), ben.clone(), dan.clone()])
            .await
            .unwrap(),
        std::collections::HashSet::from([ann.clone(), ben.clone()]),
        "existence alone, each once"
    );
    let got = s
        .standings(&[ben.clone(), cat.clone(), dan.clone()], &ann)
        .await
        .unwrap();
    assert_eq!(
        got,
        std::collections::HashMap::from([(ben.clone(), FriendState::Friend), (cat, FriendState::Blocked)])
    );
    for i in 0..3 {
        let g = GroupId::generate(T0 + i);
        s.create_group(&group_of(&g, "ben", 1), &[Member::joining(ben.clone(), T0, 0)])
            .await
            .unwrap();
    }
    assert_eq!(s.group_count(&ben, 10).await.unwrap(), 3);
    assert_eq!(
        s.group_count(&ben, 2).await.unwrap(),
        2,
        "counted no further than the cap"
    );
    assert_eq!(s.group_count(&dan, 10).await.unwrap(), 0);
    assert_eq!(s.count_group_create(&ben, 5, LAPSE).await.unwrap(), 1);
    assert_eq!(s.count_group_create(&ben, 5, LAPSE).await.unwrap(), 2);
    assert_eq!(s.count_group_create(&ben, 6, LAPSE).await.unwrap(), 1, "a new hour");
}
