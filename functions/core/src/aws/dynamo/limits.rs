//! [`FrameCounter`] on DynamoDB. The counters live in Connections (same TTL attribute) as `user:{user}#w{window}`
//! items (frames), `creates:{user}#h{hour}` items (groups created) and `uploads:{user}#d{day}` items (attachment
//! bytes announced): one `ADD` per count, no read. A connection id never holds `:` or `#`, so no counter shares a key with a
//! connection. One item per user and window: at 50 frames a second it stays far below a partition's 1,000 writes.

use super::{DynamoStore, expr::*, items::attr, outcome::failed};
use crate::{
    ids::UserId,
    ports::{FrameCounter, Res},
};
use aws_sdk_dynamodb::types::ReturnValue;

impl FrameCounter for DynamoStore {
    async fn count_frame(&self, user: &UserId, window: i64, expires_at: i64) -> Res<u64> {
        self.count(format!("user:{user}#w{window}"), 1, expires_at).await
    }

    async fn count_group_create(&self, user: &UserId, hour: i64, expires_at: i64) -> Res<u64> {
        self.count(format!("creates:{user}#h{hour}"), 1, expires_at).await
    }

    async fn count_upload_bytes(&self, user: &UserId, day: i64, bytes: u64, expires_at: i64) -> Res<u64> {
        self.count(format!("uploads:{user}#d{day}"), bytes, expires_at).await
    }
}

impl DynamoStore {
    /// Adds `amount` to the counter item `key` and returns its count.
    async fn count(&self, key: String, amount: u64, expires_at: i64) -> Res<u64> {
        let r = self
            .client
            .update_item()
            .table_name(&self.tables.connections)
            .key(attr::CONNECTION_ID, s(key))
            .update_expression("ADD #frames :one SET #expires_at = :exp")
            .set_expression_attribute_names(names(&[attr::FRAMES, attr::EXPIRES_AT]))
            .expression_attribute_values(":one", n(amount))
            .expression_attribute_values(":exp", n(expires_at))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(failed("UpdateItem"))?;
        Ok(r.attributes.as_ref().and_then(|a| number(a, attr::FRAMES)).unwrap_or(1))
    }
}
