//! Attachments over in-memory ports: `attach` grants exactly what was announced, within the caps; `send` takes
//! only the sender's own uploads of the announced size, stores nothing when it refuses and then succeeds once
//! on a retry; readers get download URLs; a delete for everyone deletes the bytes.

use crate::{
    attachments::{AttachmentId, ContentType, object_key},
    frames::{AttachFrame, DeleteFrame, ErrorCode, SendFrame, ServerFrame, Target, UploadReply},
    ids::{Body, ClientMsgId},
    now_ms,
    testing::{TestApp, caller, conn, memory::MemoryObjects, user},
};
use std::sync::Arc;

fn setup() -> (TestApp, Arc<MemoryObjects>) {
    let objects = Arc::new(MemoryObjects::default());
    let app = TestApp::builder()
        .users(&["alice", "bob", "eve"])
        .settings(|s| s.upload_bytes_per_day = 1000)
        .build()
        .with_objects(objects.clone());
    (app, objects)
}

fn attach(size: u64) -> AttachFrame {
    AttachFrame {
        content_type: ContentType::parse("image/png").unwrap(),
        size,
    }
}

fn send(cmid: &str, body: &str, attachments: &[AttachmentId]) -> SendFrame {
    SendFrame {
        client_msg_id: ClientMsgId::parse(cmid).unwrap(),
        target: Target::To(user("bob")),
        body: Body::parse_or_empty(body).unwrap(),
        seq: None,
        device: None,
        attachments: attachments.to_vec(),
    }
}

async fn sent(
    app: &TestApp,
    who: &crate::service::Caller,
    frame: SendFrame,
) -> Result<crate::frames::AckReply, crate::error::Failure> {
    app.send(who, &frame, now_ms(), now_ms() + 10_000).await
}

async fn granted(app: &TestApp, who: &str, size: u64) -> UploadReply {
    app.attach(&user(who), &attach(size), now_ms()).await.unwrap()
}

#[tokio::test]
async fn attach_signs_the_announced_type_and_size_within_the_caps() {
    let (app, _) = setup();
    let now = now_ms();
    let up = app.attach(&user("alice"), &attach(100), now).await.unwrap();
    assert_eq!(up.method, "PUT");
    assert_eq!(up.expires_at, now + 15 * 60_000);
    assert_eq!(up.headers["content-type"], "image/png");
    assert_eq!(up.headers["x-amz-meta-size"], "100");
    assert!(up.url.contains(&object_key(&user("alice"), &up.attachment_id)));

    let big = app.settings.max_attachment_bytes + 1;
    let r = app.attach(&user("alice"), &attach(big), now).await;
    assert_eq!(r.err().map(|f| f.code()), Some(ErrorCode::TooLarge));
    // 100 of the day's 1000 bytes are used: 900 more pass, one byte more does not.
    assert!(app.attach(&user("alice"), &attach(900), now).await.is_ok());
    let r = app.attach(&user("alice"), &attach(1), now).await;
    assert_eq!(r.err().map(|f| f.code()), Some(ErrorCode::Forbidden));
    assert!(
        app.attach(&user("bob"), &attach(1), now).await.is_ok(),
        "each user has its own allowance"
    );

    let plain = TestApp::with_users(&["alice"]);
    let r = plain.attach(&user("alice"), &attach(1), now).await;
    assert_eq!(
        r.err().map(|f| f.code()),
        Some(ErrorCode::BadRequest),
        "no bucket, no attachments"
    );
}

#[tokio::test]
async fn send_refuses_what_is_not_the_senders_upload_as_announced_and_stores_nothing() {
    let (app, objects) = setup();
    let alice = caller("alice", "a1");
    let up = granted(&app, "alice", 10).await;
    let key = object_key(&user("alice"), &up.attachment_id);
    let refused = |r: Result<_, crate::error::Failure>| r.err().map(|f| f.code());

    // Not uploaded yet.
    let r = sent(&app, &alice, send("m1", "", std::slice::from_ref(&up.attachment_id))).await;
    assert_eq!(refused(r), Some(ErrorCode::BadRequest));
    assert!(app.store.state.lock().unwrap().messages.is_empty());

    // Another user's upload: eve names alice's id (her key is under her own name, where nothing is).
    objects.put(&key, 10).unwrap();
    let eve = caller("eve", "e1");
    let r = sent(&app, &eve, send("e1", "", std::slice::from_ref(&up.attachment_id))).await;
    assert_eq!(refused(r), Some(ErrorCode::BadRequest));

    // Another size than announced (S3 refuses such an upload; an object that got there anyhow is refused too).
    let other = granted(&app, "alice", 10).await;
    let other_key = object_key(&user("alice"), &other.attachment_id);
    assert!(objects.put(&other_key, 11).is_none());
    objects.objects.lock().unwrap().insert(
        other_key,
        crate::attachments::StoredObject {
            size: 11,
            content_type: Some("image/png".into()),
            announced_size: Some(10),
        },
    );
    let r = sent(&app, &alice, send("m2", "", std::slice::from_ref(&other.attachment_id))).await;
    assert_eq!(refused(r), Some(ErrorCode::BadRequest));
    assert!(app.store.state.lock().unwrap().messages.is_empty());

    // The first send, retried with the same clientMsgId now that the bytes are there: stored once.
    let ack = sent(&app, &alice, send("m1", "", std::slice::from_ref(&up.attachment_id)))
        .await
        .unwrap();
    let again = sent(&app, &alice, send("m1", "", std::slice::from_ref(&up.attachment_id)))
        .await
        .unwrap();
    assert_eq!(ack, again);
    let stored = app.store.state.lock().unwrap().messages[&ack.message_id].clone();
    assert_eq!(stored.attachments.len(), 1);
    assert_eq!(
        (stored.attachments[0].size, stored.attachments[0].content_type.as_str()),
        (10, "image/png")
    );
    assert_eq!(stored.preview().as_deref(), Some("📷 Photo"));
}

#[tokio::test]
async fn readers_get_download_urls_and_a_delete_for_everyone_deletes_the_bytes() {
    let (app, objects) = setup();
    app.connect(&user("bob"), &conn("b1"), now_ms()).await.unwrap();
    let up = granted(&app, "alice", 10).await;
    let key = object_key(&user("alice"), &up.attachment_id);
    objects.put(&key, 10).unwrap();
    let alice = caller("alice", "a1");
    let ack = sent(
        &app,
        &alice,
        send("m1", "look", std::slice::from_ref(&up.attachment_id)),
    )
    .await
    .unwrap();

    let pushed = app.pusher.posts_to("b1");
    let a = &pushed[0]["attachments"][0];
    assert_eq!(a["id"], up.attachment_id.as_str());
    assert_eq!(
        (a["contentType"].as_str(), a["size"].as_u64()),
        (Some("image/png"), Some(10))
    );
    assert!(
        a["url"].as_str().unwrap().starts_with(&format!("memory://get/{key}")),
        "{a}"
    );
    assert!(a["expiresAt"].as_i64().unwrap() > now_ms());

    let ServerFrame::Sync(page) = app.sync(&user("bob"), None, now_ms()).await.unwrap() else {
        panic!("a sync page")
    };
    assert!(page.messages[0].attachments[0].url.starts_with("memory://get/"));

    let del = DeleteFrame {
        message_id: ack.message_id,
    };
    app.delete(&alice, &del, now_ms()).await.unwrap();
    assert!(objects.objects.lock().unwrap().is_empty(), "the bytes are gone");
    let stored = app.store.state.lock().unwrap().messages[&ack.message_id].clone();
    assert!(stored.attachments.is_empty() && stored.to_push().attachments.is_empty());
}
