//! Attachments over real websockets and real presigned S3 requests to the emulator (through natter-local's
//! proxy, as a phone or a browser would make them): the bytes go up with the URL `attach` signed and down with
//! the URLs pushes, `sync` and `history` carry; nothing else gets in, and a delete for everyone takes the bytes.

use natter_tests::{Client, fetch, start};
use serde_json::{Value, json};

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// The headers an `upload` reply says to send.
fn signed_headers(upload: &Value) -> Vec<(String, String)> {
    upload["headers"]
        .as_object()
        .expect("headers")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect()
}

async fn attach(c: &mut Client, size: usize) -> Value {
    let up = c
        .request(json!({"action": "attach", "contentType": "image/png", "size": size}))
        .await;
    assert_eq!(up["type"], "upload", "{up}");
    up
}

fn send(cmid: &str, to: &str, ids: &[&Value]) -> Value {
    json!({"action": "send", "clientMsgId": cmid, "to": to, "body": "", "attachments": ids})
}

#[tokio::test]
async fn a_picture_goes_up_and_down_by_presigned_urls_and_reaches_only_the_conversation() {
    let local = start().await;
    let url = local.ws_url.clone();
    let mut alice = Client::connect(&url, "alice").await;
    let mut bob = Client::connect(&url, "bob").await;
    let mut eve = Client::connect(&url, "eve").await;
    let picture: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 256) as u8).collect();

    let big = alice
        .request(json!({"action": "attach", "contentType": "image/png", "size": 100 * 1024 * 1024 + 1}))
        .await;
    assert_eq!(big["code"], "too_large", "{big}");

    let up = attach(&mut alice, picture.len()).await;
    let id = &up["attachmentId"];
    let put_url = up["url"].as_str().unwrap().to_owned();
    assert!(
        put_url.starts_with("http://127.0.0.1:"),
        "through natter-local's proxy: {put_url}"
    );

    // Named before it is uploaded: refused, and the same clientMsgId works once the bytes are there.
    let early = alice.request(send("pic-1", "bob", &[id])).await;
    assert_eq!(early["code"], "bad_request", "{early}");

    // Storage takes exactly what was signed: not more bytes, not another type.
    let (status, _, _) = fetch(
        "PUT",
        &put_url,
        &signed_headers(&up),
        &[picture.clone(), vec![0]].concat(),
    )
    .await;
    assert!((400..500).contains(&status), "a longer body is refused: {status}");
    let mut wrong_type = signed_headers(&up);
    wrong_type.retain(|(k, _)| k != "content-type");
    wrong_type.push(("content-type".into(), "text/html".into()));
    let (status, _, _) = fetch("PUT", &put_url, &wrong_type, &picture).await;
    assert!(
        (400..500).contains(&status),
        "another content type is refused: {status}"
    );
    let (status, _, body) = fetch("PUT", &put_url, &signed_headers(&up), &picture).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));

    // eve names alice's upload: it is not hers.
    let stolen = eve.request(send("steal", "bob", &[id])).await;
    assert_eq!(stolen["code"], "bad_request", "{stolen}");

    let ack = alice.request(send("pic-1", "bob", &[id])).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let push = bob
        .wait_for("the picture", |v| {
            v["type"] == "message" && v["messageId"] == ack["messageId"]
        })
        .await;
    let a = &push["attachments"][0];
    assert_eq!(
        (&a["id"], &a["contentType"], &a["size"]),
        (id, &json!("image/png"), &json!(picture.len()))
    );
    let (status, headers, got) = fetch("GET", a["url"].as_str().unwrap(), &[], b"").await;
    assert_eq!(status, 200);
    assert_eq!(got, picture, "bob downloads exactly what alice uploaded");
    assert_eq!(header(&headers, "content-type"), Some("image/png"));
    assert!(
        eve.messages_within(std::time::Duration::from_millis(300))
            .await
            .is_empty()
    );

    // sync and history carry fresh URLs too (once the asynchronous indexing ran); the preview says what it is.
    let mid = ack["messageId"].clone();
    let page = bob
        .request_until(json!({"action": "sync"}), "the picture in sync", |p| {
            let has = |k: &str| {
                p[k].as_array()
                    .is_some_and(|l| l.iter().any(|x| x["messageId"] == mid || x["last"]["messageId"] == mid))
            };
            has("messages") && has("conversations")
        })
        .await;
    let synced = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["messageId"] == mid)
        .unwrap();
    assert!(
        synced["attachments"][0]["url"].as_str().unwrap().starts_with("http://"),
        "{synced}"
    );
    let conversation = page["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["with"] == "alice")
        .unwrap();
    assert_eq!(conversation["last"]["preview"], "📷 Photo", "{conversation}");
    let history = alice
        .request_until(
            json!({"action": "history", "with": "bob"}),
            "the picture in history",
            |h| h["messages"][0]["messageId"] == mid,
        )
        .await;
    assert_eq!(history["messages"][0]["attachments"][0]["id"], *id, "{history}");

    // A browser page on another origin may upload (the bucket's CORS, as on AWS).
    let (status, headers, _) = fetch(
        "OPTIONS",
        &put_url,
        &[
            ("Origin".into(), "http://127.0.0.1:3001".into()),
            ("Access-Control-Request-Method".into(), "PUT".into()),
            (
                "Access-Control-Request-Headers".into(),
                "content-type,x-amz-meta-size".into(),
            ),
        ],
        b"",
    )
    .await;
    assert!((200..300).contains(&status), "preflight: {status}");
    assert!(header(&headers, "access-control-allow-origin").is_some(), "{headers:?}");

    // A delete for everyone deletes the bytes: the URL bob was given stops working.
    let r = alice
        .request(json!({"action": "delete", "messageId": ack["messageId"]}))
        .await;
    assert_eq!(r["type"], "ok", "{r}");
    let (status, _, _) = fetch("GET", a["url"].as_str().unwrap(), &[], b"").await;
    assert_eq!(status, 404, "the deleted picture is gone");
}

/// The bucket's CORS rules hold as on S3: a page of an origin `AttachmentOrigins` does not name can neither upload
/// nor read (the emulators alone would allow every origin; natter-local's proxy enforces the rules).
#[tokio::test]
async fn only_the_origins_the_bucket_names_may_upload_from_a_browser() {
    let (mut opts, _logs) = natter_tests::options();
    opts.parameters
        .insert("AttachmentOrigins".into(), "https://app.example.com".into());
    let local = natter_local::local::Local::start(opts).await.expect("natter-local");
    let mut alice = Client::connect(&local.ws_url, "alice").await;
    let up = attach(&mut alice, 4).await;
    let url = up["url"].as_str().unwrap();
    let preflight = |origin: &str| {
        vec![
            ("Origin".to_owned(), origin.to_owned()),
            ("Access-Control-Request-Method".to_owned(), "PUT".to_owned()),
            (
                "Access-Control-Request-Headers".to_owned(),
                "content-type,x-amz-meta-size".to_owned(),
            ),
        ]
    };
    let (status, _, _) = fetch("OPTIONS", url, &preflight("http://127.0.0.1:3001"), b"").await;
    assert_eq!(status, 403, "an origin the rules do not name");
    let (status, headers, _) = fetch("OPTIONS", url, &preflight("https://app.example.com"), b"").await;
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "access-control-allow-origin"),
        Some("https://app.example.com")
    );

    let mut put = signed_headers(&up);
    put.push(("Origin".into(), "http://evil.example".into()));
    let (status, headers, _) = fetch("PUT", url, &put, b"1234").await;
    assert_eq!(status, 200, "S3 stores it; the browser hides the answer from the page");
    assert_eq!(header(&headers, "access-control-allow-origin"), None, "{headers:?}");
}
