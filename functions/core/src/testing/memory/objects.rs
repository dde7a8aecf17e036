//! [`ObjectStore`] in memory: what was "uploaded" is whatever a test puts, as a client's PUT would.

use crate::attachments::{ContentType, ObjectStore, Presigned, Res, SIZE_HEADER, StoredObject};
use futures::future::BoxFuture;
use std::{collections::HashMap, sync::Mutex};

#[derive(Debug, Default)]
pub struct MemoryObjects {
    pub objects: Mutex<HashMap<String, StoredObject>>,
    /// Upload grants handed out: key -> (content type, size), as the presigned PUT would sign them.
    pub grants: Mutex<HashMap<String, (String, u64)>>,
}

impl MemoryObjects {
    /// A client's PUT of `size` bytes to a granted key, carrying the signed headers. `None`, as S3 refuses it:
    /// no grant, or another length than signed.
    pub fn put(&self, key: &str, size: u64) -> Option<()> {
        let (content_type, announced) = self.grants.lock().unwrap().get(key).cloned()?;
        if size != announced {
            return None;
        }
        self.objects.lock().unwrap().insert(
            key.to_owned(),
            StoredObject {
                size,
                content_type: Some(content_type),
                announced_size: Some(announced),
            },
        );
        Some(())
    }
}

impl ObjectStore for MemoryObjects {
    fn enabled(&self) -> bool {
        true
    }

    fn upload<'a>(
        &'a self,
        key: &'a str,
        content_type: &'a ContentType,
        size: u64,
        ttl_secs: u64,
    ) -> BoxFuture<'a, Res<Presigned>> {
        self.grants
            .lock()
            .unwrap()
            .insert(key.to_owned(), (content_type.as_str().to_owned(), size));
        let presigned = Presigned {
            url: format!("memory://put/{key}?ttl={ttl_secs}"),
            headers: [
                ("content-type".to_owned(), content_type.as_str().to_owned()),
                (SIZE_HEADER.to_owned(), size.to_string()),
            ]
            .into(),
        };
        Box::pin(async move { Ok(presigned) })
    }

    fn download<'a>(&'a self, key: &'a str, ttl_secs: u64) -> BoxFuture<'a, Res<String>> {
        Box::pin(async move { Ok(format!("memory://get/{key}?ttl={ttl_secs}")) })
    }

    fn head<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Res<Option<StoredObject>>> {
        let found = self.objects.lock().unwrap().get(key).cloned();
        Box::pin(async move { Ok(found) })
    }

    fn delete(&self, key: String) -> BoxFuture<'_, Res<()>> {
        self.objects.lock().unwrap().remove(&key);
        Box::pin(async { Ok(()) })
    }
}
