//! [`FriendStore`] on DynamoDB: the Friends table, one row per direction, both written or deleted in one
//! transaction (friendship is mutual).

use super::{
    DynamoStore,
    expr::*,
    items::attr,
    outcome::{Committed, retryable},
    tx_delete, tx_put,
};
use crate::{
    ids::UserId,
    ports::{FriendStore, Res},
};
use aws_sdk_dynamodb::types::{Delete, Put};
use std::collections::HashMap;

impl FriendStore for DynamoStore {
    async fn befriend(&self, a: &UserId, b: &UserId, now: i64) -> Res<()> {
        let row = |x: &UserId, y: &UserId| {
            let item = HashMap::from([
                (attr::USER_ID.to_owned(), s(x.as_str())),
                (attr::FRIEND_ID.to_owned(), s(y.as_str())),
                (attr::CREATED_AT.to_owned(), n(now)),
            ]);
            tx_put(Put::builder().table_name(&self.tables.friends).set_item(Some(item)))
        };
        // Both directions or neither.
        self.both(vec![row(a, b)?, row(b, a)?]).await
    }

    async fn unfriend(&self, a: &UserId, b: &UserId) -> Res<()> {
        let row = |x: &UserId, y: &UserId| {
            tx_delete(
                Delete::builder()
                    .table_name(&self.tables.friends)
                    .key(attr::USER_ID, s(x.as_str()))
                    .key(attr::FRIEND_ID, s(y.as_str())),
            )
        };
        self.both(vec![row(a, b)?, row(b, a)?]).await
    }

    async fn friends_of(&self, user: &UserId) -> Res<Vec<UserId>> {
        let q = self
            .client
            .query()
            .table_name(&self.tables.friends)
            .key_condition_expression("#user_id = :u")
            // Strong: a `friends` reply lists the friend just added.
            .consistent_read(true)
            .projection_expression("#friend_id")
            .set_expression_attribute_names(names(&[attr::USER_ID, attr::FRIEND_ID]))
            .expression_attribute_values(":u", s(user.as_str()));
        self.query_user_ids(q, attr::FRIEND_ID).await
    }
}

impl DynamoStore {
    /// Writes both rows of a friendship in one transaction (unconditional: only a conflict cancels it).
    async fn both(&self, rows: Vec<aws_sdk_dynamodb::types::TransactWriteItem>) -> Res<()> {
        match self.transact(rows).await? {
            Committed::Yes => Ok(()),
            Committed::Cancelled(_) => Err(retryable("TransactWriteItems", "transaction conflict")),
        }
    }
}
