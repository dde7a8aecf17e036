//! Attachments: `attach` answers a presigned upload; `send` checks what it names; every message that leaves with
//! attachments gets fresh download URLs ([`App::link`]). See [`crate::attachments`] for the design.

use super::App;
use crate::{
    attachments::{Attachment, AttachmentId, ContentType, object_key},
    error::{BackendError, Failure, bad_request, forbidden, too_large},
    frames::{AttachFrame, MessagePush, UploadReply},
    ids::UserId,
    ports::FrameCounter,
};

impl<S: FrameCounter, P, Q> App<S, P, Q> {
    /// A presigned PUT for one attachment of `frame.size` bytes, after counting them against the caller's daily
    /// allowance. No byte passes through the function.
    pub async fn attach(&self, caller: &UserId, frame: &AttachFrame, now: i64) -> Result<UploadReply, Failure> {
        if !self.objects.enabled() {
            return Err(bad_request("this deployment takes no attachments"));
        }
        let max = self.settings.max_attachment_bytes;
        if frame.size > max {
            return Err(too_large(format!("an attachment may have at most {max} bytes")));
        }
        let allowance = self.settings.upload_bytes_per_day;
        if allowance > 0 {
            let day = now.div_euclid(86_400_000);
            let used = self
                .store
                .count_upload_bytes(caller, day, frame.size, (day + 1) * 86_400 + 60)
                .await?;
            if used > allowance {
                return Err(forbidden(format!("at most {allowance} bytes of attachments per day")));
            }
        }
        let id = AttachmentId::generate();
        let ttl = self.settings.upload_url_secs;
        let presigned = self
            .objects
            .upload(&object_key(caller, &id), &frame.content_type, frame.size, ttl)
            .await?;
        Ok(UploadReply {
            attachment_id: id,
            url: presigned.url,
            method: "PUT".into(),
            headers: presigned.headers,
            expires_at: now + ttl as i64 * 1000,
        })
    }
}

impl<S, P, Q> App<S, P, Q> {
    /// What a send names, checked with one HeadObject each, all at once: uploaded under the sender's own key,
    /// with the size announced at `attach`. Anything else is `bad_request`, the same for each reason, so a
    /// sender learns nothing about another user's uploads.
    pub(super) async fn check_attachments(
        &self,
        owner: &UserId,
        ids: &[AttachmentId],
    ) -> Result<Vec<Attachment>, Failure> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        if !self.objects.enabled() {
            return Err(bad_request("this deployment takes no attachments"));
        }
        let heads = futures::future::try_join_all(ids.iter().map(|id| async move {
            let key = object_key(owner, id);
            Ok::<_, BackendError>((id, self.objects.head(&key).await?))
        }))
        .await?;
        heads
            .into_iter()
            .map(|(id, head)| {
                let refused = || bad_request(format!("attachment `{}` was not uploaded as announced", id.as_str()));
                let head = head.ok_or_else(refused)?;
                if head.announced_size != Some(head.size) || head.size > self.settings.max_attachment_bytes {
                    return Err(refused());
                }
                let content_type = head
                    .content_type
                    .as_deref()
                    .and_then(|t| ContentType::parse(t).ok())
                    .ok_or_else(refused)?;
                Ok(Attachment {
                    id: id.clone(),
                    content_type,
                    size: head.size,
                })
            })
            .collect()
    }

    /// Signs a download URL for each attachment of `pushes`, valid `download_url_secs` from `now`: done right
    /// before a message leaves (a push, a `sync` or `history` page), only for its readers. Signing is local: no
    /// call to storage.
    pub async fn link(&self, pushes: &mut [MessagePush], now: i64) -> Result<(), BackendError> {
        let ttl = self.settings.download_url_secs;
        for push in pushes.iter_mut() {
            for a in push.attachments.iter_mut() {
                a.url = self.objects.download(&object_key(&push.from, &a.id), ttl).await?;
                a.expires_at = now + ttl as i64 * 1000;
            }
        }
        Ok(())
    }
}
