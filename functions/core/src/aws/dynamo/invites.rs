//! [`InviteStore`] on DynamoDB: the Invites table, one item per invited user (partition) and group (sort key), and
//! its local index **ByTime** (`user_id`, `created_at`), which lists a user's newest invitations and tells whether
//! one is still among the newest kept. A local index reads strongly, so an invitation shows the moment it is sent;
//! and its partition is the invited user's, so one user's invitations never cost another's reads.

use super::{DynamoStore, Item, expr::*, items::attr, outcome::failed};
use crate::{
    ids::{GroupId, GroupName, UserId},
    model::Invite,
    ports::{InviteStore, Res},
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The ByTime local index of Invites.
const BY_TIME_INDEX: &str = "ByTime";
const CREATED_AT: &str = "created_at";

#[derive(Debug, Serialize, Deserialize)]
struct InviteItem {
    user_id: UserId,
    group_id: GroupId,
    group_name: GroupName,
    by: UserId,
    created_at: i64,
    expires_at: i64,
}

impl From<InviteItem> for Invite {
    fn from(i: InviteItem) -> Self {
        Invite {
            user: i.user_id,
            group: i.group_id,
            name: i.group_name,
            by: i.by,
            created_at: i.created_at,
        }
    }
}

fn invite_key(user: &UserId, group: &GroupId) -> Item {
    HashMap::from([
        (attr::USER_ID.to_owned(), s(user.as_str())),
        (attr::GROUP_ID.to_owned(), s(group.as_str())),
    ])
}

impl InviteStore for DynamoStore {
    async fn invite(&self, invite: &Invite, expires_at: i64) -> Res<()> {
        let item = InviteItem {
            user_id: invite.user.clone(),
            group_id: invite.group.clone(),
            group_name: invite.name.clone(),
            by: invite.by.clone(),
            created_at: invite.created_at,
            expires_at,
        };
        self.client
            .put_item()
            .table_name(&self.tables.invites)
            .set_item(Some(to_item("invite", &item)?))
            .send()
            .await
            .map_err(failed("PutItem"))?;
        Ok(())
    }

    async fn invitation(&self, user: &UserId, group: &GroupId, keep: usize) -> Res<Option<Invite>> {
        let r = self
            .client
            .get_item()
            .table_name(&self.tables.invites)
            .set_key(Some(invite_key(user, group)))
            .consistent_read(true)
            .send()
            .await
            .map_err(failed("GetItem"))?;
        let Some(item) = r.item else { return Ok(None) };
        let invite: Invite = from_item::<InviteItem>("invite", item)?.into();
        // Still among the newest `keep`? Count the newer ones on the index, no further than `keep`.
        let newer = self
            .client
            .query()
            .table_name(&self.tables.invites)
            .index_name(BY_TIME_INDEX)
            .key_condition_expression("#user_id = :u AND #created_at > :t")
            .set_expression_attribute_names(names(&[attr::USER_ID, CREATED_AT]))
            .expression_attribute_values(":u", s(user.as_str()))
            .expression_attribute_values(":t", n(invite.created_at))
            .select(aws_sdk_dynamodb::types::Select::Count)
            .limit(keep.max(1) as i32)
            .consistent_read(true)
            .send()
            .await
            .map_err(failed("Query"))?;
        Ok((newer.count() < keep as i32).then_some(invite))
    }

    async fn invites(&self, user: &UserId, limit: usize) -> Res<Vec<Invite>> {
        let r = self
            .client
            .query()
            .table_name(&self.tables.invites)
            .index_name(BY_TIME_INDEX)
            .key_condition_expression("#user_id = :u")
            .set_expression_attribute_names(names(&[attr::USER_ID]))
            .expression_attribute_values(":u", s(user.as_str()))
            .scan_index_forward(false)
            .limit(limit.clamp(1, 1000) as i32)
            .consistent_read(true)
            .send()
            .await
            .map_err(failed("Query"))?;
        r.items
            .unwrap_or_default()
            .into_iter()
            .map(|i| from_item::<InviteItem>("invite", i).map(Invite::from))
            .collect()
    }

    async fn drop_invite(&self, user: &UserId, group: &GroupId) -> Res<()> {
        self.client
            .delete_item()
            .table_name(&self.tables.invites)
            .set_key(Some(invite_key(user, group)))
            .send()
            .await
            .map_err(failed("DeleteItem"))?;
        Ok(())
    }
}
