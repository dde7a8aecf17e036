//! The contract of the [`ObjectStore`] port: what `attach`, `send` and `delete` rely on from object storage, run
//! on the in-memory fake and on S3 in the emulator. The caller gives the two requests a client makes itself:
//! `put` (the presigned upload, true if storage took it) and `get` (a presigned download's bytes, if any).

use crate::attachments::{ContentType, ObjectStore, Presigned, SIZE_HEADER};
use std::future::Future;

pub async fn uploads_take_only_what_was_signed_and_go_once_deleted<P, PF, G, GF>(
    objects: &dyn ObjectStore,
    put: P,
    get: G,
) where
    P: Fn(Presigned, Vec<u8>) -> PF,
    PF: Future<Output = bool>,
    G: Fn(String) -> GF,
    GF: Future<Output = Option<Vec<u8>>>,
{
    let key = format!("a/alice/{}", crate::attachments::AttachmentId::generate().as_str());
    let png = ContentType::parse("image/png").unwrap();
    assert_eq!(objects.head(&key).await.unwrap(), None, "nothing before the upload");

    let grant = objects.upload(&key, &png, 5, 900).await.unwrap();
    assert_eq!(grant.headers.get("content-type").map(String::as_str), Some("image/png"));
    assert_eq!(grant.headers.get(SIZE_HEADER).map(String::as_str), Some("5"));
    assert!(
        !put(grant.clone(), b"toolong".to_vec()).await,
        "another length than signed is refused"
    );
    assert_eq!(objects.head(&key).await.unwrap(), None);
    assert!(put(grant, b"hello".to_vec()).await, "the signed upload is taken");

    let head = objects.head(&key).await.unwrap().expect("stored");
    assert_eq!((head.size, head.announced_size), (5, Some(5)));
    assert_eq!(head.content_type.as_deref(), Some("image/png"));
    let url = objects.download(&key, 3600).await.unwrap();
    assert_eq!(get(url.clone()).await.as_deref(), Some(&b"hello"[..]));

    objects.delete(key.clone()).await.unwrap();
    assert_eq!(objects.head(&key).await.unwrap(), None);
    assert_eq!(get(url).await, None, "a URL of deleted bytes gets nothing");
    objects.delete(key).await.unwrap();
}
