//! [`ObjectStore`] on S3: presigned PUTs and GETs (signed here, with the function's own credentials, no call to
//! S3) and one HeadObject per attachment a send names.

use super::call_error;
use crate::attachments::{ContentType, ObjectStore, Presigned, Res, SIZE_HEADER, StoredObject};
use crate::error::BackendError;
use aws_sdk_s3::{operation::head_object::HeadObjectError, presigning::PresigningConfig};
use futures::future::BoxFuture;
use std::time::Duration;

pub struct S3Objects {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Objects {
    pub fn new(client: aws_sdk_s3::Client, bucket: String) -> Self {
        Self { client, bucket }
    }
}

fn presigning(ttl_secs: u64) -> Res<PresigningConfig> {
    PresigningConfig::expires_in(Duration::from_secs(ttl_secs)).map_err(|e| BackendError::corrupt("presigning", e))
}

/// A presigning failure is the credentials' (not yet loaded, or expired): worth a retry.
fn presign_failed(e: impl std::error::Error + Send + Sync + 'static) -> BackendError {
    BackendError::Call {
        service: "S3",
        operation: "presign",
        retryable: true,
        source: Box::new(e),
    }
}

impl ObjectStore for S3Objects {
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
        Box::pin(async move {
            let request = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .content_type(content_type.as_str())
                // Signed, so S3 refuses a body of any other length: the cap holds without a POST policy.
                .content_length(size as i64)
                .metadata(SIZE_HEADER.trim_start_matches("x-amz-meta-"), size.to_string())
                .presigned(presigning(ttl_secs)?)
                .await
                .map_err(presign_failed)?;
            Ok(Presigned {
                url: request.uri().to_owned(),
                headers: request
                    .headers()
                    // The browser sets these itself (and may not set them by hand); they are still signed.
                    .filter(|(name, _)| {
                        !name.eq_ignore_ascii_case("host") && !name.eq_ignore_ascii_case("content-length")
                    })
                    .map(|(name, value)| (name.to_ascii_lowercase(), value.to_owned()))
                    .collect(),
            })
        })
    }

    fn download<'a>(&'a self, key: &'a str, ttl_secs: u64) -> BoxFuture<'a, Res<String>> {
        Box::pin(async move {
            let request = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .presigned(presigning(ttl_secs)?)
                .await
                .map_err(presign_failed)?;
            Ok(request.uri().to_owned())
        })
    }

    fn head<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Res<Option<StoredObject>>> {
        Box::pin(async move {
            match self.client.head_object().bucket(&self.bucket).key(key).send().await {
                Ok(o) => Ok(Some(StoredObject {
                    size: o.content_length().unwrap_or_default().max(0) as u64,
                    content_type: o.content_type().map(str::to_owned),
                    announced_size: o
                        .metadata()
                        .and_then(|m| m.get(SIZE_HEADER.trim_start_matches("x-amz-meta-")))
                        .and_then(|v| v.parse().ok()),
                })),
                Err(e) if matches!(e.as_service_error(), Some(HeadObjectError::NotFound(_))) => Ok(None),
                Err(e) => Err(call_error("S3", "HeadObject", e)),
            }
        })
    }

    fn delete(&self, key: String) -> BoxFuture<'_, Res<()>> {
        Box::pin(async move {
            self.client
                .delete_object()
                .bucket(&self.bucket)
                .key(key)
                .send()
                .await
                .map(drop)
                .map_err(|e| call_error("S3", "DeleteObject", e))
        })
    }
}
