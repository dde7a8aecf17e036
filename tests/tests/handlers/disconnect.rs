//! `$disconnect` against the real emulator: the last connection going takes the user offline with last_seen.

use natter_disconnect::handle;
use natter_tests::testkit::{TestStack, invocation, ws_event};

#[tokio::test]
async fn the_last_disconnect_sets_offline_and_last_seen() {
    let stack = TestStack::new(None).await;
    let app = stack.app("DisconnectFunction");
    let now = natter_core::now_ms();
    for c in ["d1", "d2"] {
        app.connect(&"carol".parse_user(), &c.parse_conn(), now).await.unwrap();
    }
    handle(&app, invocation(ws_event("disconnect", "carol", "d1", None), 3000))
        .await
        .unwrap();
    let p = app
        .store
        .presence(&["carol".parse_user()])
        .await
        .unwrap()
        .remove(&"carol".parse_user())
        .unwrap();
    assert_eq!(
        p.status(natter_core::now_ms()),
        natter_core::frames::Status::Online,
        "d2 is still open"
    );
    assert_eq!(
        p.live(natter_core::now_ms()).map(|c| c.as_str()).collect::<Vec<_>>(),
        ["d2"]
    );

    let before = natter_core::now_ms();
    handle(&app, invocation(ws_event("disconnect", "carol", "d2", None), 3000))
        .await
        .unwrap();
    let p = app
        .store
        .presence(&["carol".parse_user()])
        .await
        .unwrap()
        .remove(&"carol".parse_user())
        .unwrap();
    assert_eq!(p.status(natter_core::now_ms()), natter_core::frames::Status::Offline);
    assert!(p.last_seen.unwrap() >= before);
    assert!(stack.scan("ConnectionsTable").await.is_empty());
}

#[tokio::test]
async fn disconnecting_an_unknown_connection_is_harmless() {
    let stack = TestStack::new(None).await;
    let app = stack.app("DisconnectFunction");
    let r = handle(&app, invocation(ws_event("disconnect", "nobody", "zz", None), 3000))
        .await
        .unwrap();
    assert_eq!(r.status_code, 200);
    assert!(
        stack.scan("PresenceTable").await.is_empty(),
        "no presence item is made up"
    );
}

trait Parse {
    fn parse_user(&self) -> natter_core::ids::UserId;
    fn parse_conn(&self) -> natter_core::ids::ConnectionId;
}

impl Parse for &str {
    fn parse_user(&self) -> natter_core::ids::UserId {
        natter_core::ids::UserId::parse(self).unwrap()
    }
    fn parse_conn(&self) -> natter_core::ids::ConnectionId {
        natter_core::ids::ConnectionId::parse(self).unwrap()
    }
}

use natter_core::ports::PresenceStore as _;
