//! [`FriendStore`] on DynamoDB: the Friends table, one row per direction (`user_id`'s view of `friend_id`: friend,
//! requested, incoming or blocked, and whether the other side muted it), both changed in one transaction.

use super::{
    DynamoStore, Item, Read,
    expr::*,
    items::{FriendItem, attr},
    keys_and_attributes,
    outcome::{Committed, failed, retryable},
    tx_delete, tx_put,
};
use crate::{
    ids::UserId,
    model::{FriendRow, FriendState, RowChange},
    ports::{FriendStore, Res},
};
use aws_sdk_dynamodb::types::{Delete, Put};
use std::collections::HashMap;

fn row_key(owner: &UserId, other: &UserId) -> Item {
    HashMap::from([
        (attr::USER_ID.to_owned(), s(owner.as_str())),
        (attr::FRIEND_ID.to_owned(), s(other.as_str())),
    ])
}

impl FriendStore for DynamoStore {
    async fn relation(&self, a: &UserId, b: &UserId) -> Res<(Option<FriendRow>, Option<FriendRow>)> {
        let keys = keys_and_attributes(vec![row_key(a, b), row_key(b, a)], None, Read::Strong)?;
        let items = self
            .batch_get(HashMap::from([(self.tables.friends.clone(), keys)]))
            .await?
            .remove(&self.tables.friends)
            .unwrap_or_default();
        let (mut of_a, mut of_b) = (None, None);
        for item in items {
            let row: FriendItem = from_item("friend", item)?;
            if row.user_id == *a {
                of_a = Some(row.into());
            } else {
                of_b = Some(row.into());
            }
        }
        Ok((of_a, of_b))
    }

    async fn set_relation(&self, a: &UserId, b: &UserId, a_row: RowChange, b_row: RowChange, now: i64) -> Res<()> {
        let mut writes = Vec::new();
        for (owner, other, change) in [(a, b, a_row), (b, a, b_row)] {
            match change {
                RowChange::Keep => {}
                RowChange::Delete => writes.push(tx_delete(
                    Delete::builder()
                        .table_name(&self.tables.friends)
                        .set_key(Some(row_key(owner, other))),
                )?),
                RowChange::Put(row) => writes.push(tx_put(
                    Put::builder()
                        .table_name(&self.tables.friends)
                        .set_item(Some(to_item("friend", &FriendItem::new(owner, &row, now))?)),
                )?),
            }
        }
        if writes.is_empty() {
            return Ok(());
        }
        // Both rows or neither (unconditional: only a conflicting transaction cancels it).
        match self.transact(writes).await? {
            Committed::Yes => Ok(()),
            Committed::Cancelled(_) => Err(retryable("TransactWriteItems", "transaction conflict")),
        }
    }

    async fn standings(&self, owners: &[UserId], other: &UserId) -> Res<HashMap<UserId, FriendState>> {
        let keys = owners.iter().map(|o| row_key(o, other)).collect();
        self.get_many(&self.tables.friends, keys, None, Read::Strong)
            .await?
            .into_iter()
            .map(|i| from_item::<FriendItem>("friend", i).map(|f| (f.user_id, f.state)))
            .collect()
    }

    async fn standing(&self, owner: &UserId, other: &UserId) -> Res<Option<FriendState>> {
        let r = self
            .client
            .get_item()
            .table_name(&self.tables.friends)
            .set_key(Some(row_key(owner, other)))
            .consistent_read(true)
            .send()
            .await
            .map_err(failed("GetItem"))?;
        r.item
            .map(|item| from_item::<FriendItem>("friend", item).map(|f| f.state))
            .transpose()
    }

    async fn friends_of(&self, user: &UserId) -> Res<Vec<FriendRow>> {
        let q = self
            .client
            .query()
            .table_name(&self.tables.friends)
            .key_condition_expression("#user_id = :u")
            // Strong: a `friends` reply lists the request just made.
            .consistent_read(true)
            .set_expression_attribute_names(names(&[attr::USER_ID]))
            .expression_attribute_values(":u", s(user.as_str()));
        self.query_all(q)
            .await?
            .into_iter()
            .map(|i| from_item::<FriendItem>("friend", i).map(FriendRow::from))
            .collect()
    }
}
