//! [`Directory`] on DynamoDB: the Users table, read together with Presence so that "does the recipient exist" and
//! "where are the participants connected" cost one call.

use super::{
    BATCH_GET_MAX, DynamoStore, Item, Read,
    expr::*,
    items::{PresenceItem, attr},
    keys_and_attributes,
    outcome::failed,
};
use crate::{
    ids::UserId,
    model::Presence,
    ports::{Directory, Res},
};
use std::collections::{HashMap, HashSet};

impl Directory for DynamoStore {
    async fn register(&self, user: &UserId, now: i64) -> Res<()> {
        // Most connects are by known users: reading the row (half a read unit) is a tenth of the price of
        // writing it again (one write unit). A stale read only means an extra write that changes nothing.
        let known = self
            .client
            .get_item()
            .table_name(&self.tables.users)
            .set_key(Some(user_key(user)))
            .projection_expression("#user_id")
            .set_expression_attribute_names(names(&[attr::USER_ID]))
            .send()
            .await
            .map_err(failed("GetItem"))?
            .item
            .is_some();
        if known {
            return Ok(());
        }
        self.client
            .update_item()
            .table_name(&self.tables.users)
            .set_key(Some(user_key(user)))
            .update_expression("SET #joined_at = if_not_exists(#joined_at, :now)")
            .set_expression_attribute_names(names(&[attr::JOINED_AT]))
            .expression_attribute_values(":now", n(now))
            .send()
            .await
            .map_err(failed("UpdateItem"))?;
        Ok(())
    }

    async fn existing(&self, users: &[UserId]) -> Res<HashSet<UserId>> {
        let unique: HashSet<&UserId> = users.iter().collect();
        let keys = unique.into_iter().map(user_key).collect();
        self.get_many(&self.tables.users, keys, Some(&[attr::USER_ID]), Read::Strong)
            .await?
            .iter()
            .map(|i| {
                let id = i.get(attr::USER_ID).and_then(|v| v.as_s().ok()).map(String::as_str);
                UserId::parse(id.unwrap_or_default()).map_err(|e| crate::error::BackendError::corrupt("user", e))
            })
            .collect()
    }

    async fn exists(&self, user: &UserId) -> Res<bool> {
        let r = self
            .client
            .get_item()
            .table_name(&self.tables.users)
            .set_key(Some(user_key(user)))
            .projection_expression("#u")
            .expression_attribute_names("#u", attr::USER_ID)
            .consistent_read(true)
            .send()
            .await
            .map_err(super::outcome::failed("GetItem"))?;
        Ok(r.item.is_some())
    }

    async fn lookup(&self, users: &[UserId], known: &[UserId]) -> Res<HashMap<UserId, Presence>> {
        let checked: Vec<&UserId> = users.iter().collect::<HashSet<_>>().into_iter().collect();
        let known: Vec<&UserId> = known
            .iter()
            .collect::<HashSet<_>>()
            .into_iter()
            .filter(|u| !checked.contains(u))
            .collect();
        let mut out = HashMap::new();
        // Users (existence) and Presence (connections) of the checked users in one BatchGetItem: 2 keys each;
        // the known users' presence rides along (their Users rows are not read: half a read unit each).
        let (mut rest, mut rest_known) = (checked.as_slice(), known.as_slice());
        while !rest.is_empty() || !rest_known.is_empty() {
            let (kn, kr) = rest_known.split_at(rest_known.len().min(BATCH_GET_MAX));
            let (ch, cr) = rest.split_at(rest.len().min((BATCH_GET_MAX - kn.len()) / 2));
            (rest, rest_known) = (cr, kr);
            let mut request = HashMap::new();
            if !ch.is_empty() {
                let keys = ch.iter().map(|u| user_key(u)).collect();
                request.insert(
                    self.tables.users.clone(),
                    keys_and_attributes(keys, Some(&[attr::USER_ID]), Read::Eventual)?,
                );
            }
            let keys = ch.iter().chain(kn).map(|u| user_key(u)).collect();
            request.insert(
                self.tables.presence.clone(),
                keys_and_attributes(keys, None, Read::Eventual)?,
            );
            let mut got = self.batch_get(request).await?;
            let mut presence: HashMap<String, Presence> = HashMap::new();
            for item in got.remove(&self.tables.presence).unwrap_or_default() {
                let p: PresenceItem = from_item("presence", item)?;
                presence.insert(p.user_id.clone(), p.into_presence());
            }
            let existing = got
                .remove(&self.tables.users)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|item| {
                    item.get(attr::USER_ID)
                        .and_then(|v| v.as_s().ok())
                        .and_then(|u| UserId::parse(u).ok())
                });
            for user in existing.chain(kn.iter().map(|u| (*u).clone())) {
                let p = presence.remove(user.as_str()).unwrap_or_default();
                out.insert(user, p);
            }
        }
        // A user registered an instant ago may be missing from an eventual read: a miss is read again strongly
        // (only misses pay the full price). Its presence comes from the eventual read, or is none.
        let missing: Vec<Item> = checked
            .iter()
            .filter(|u| !out.contains_key(**u))
            .map(|u| user_key(u))
            .collect();
        if !missing.is_empty() {
            let users = self.tables.users.clone();
            for item in self
                .get_many(&users, missing, Some(&[attr::USER_ID]), Read::Strong)
                .await?
            {
                if let Some(user) = item
                    .get(attr::USER_ID)
                    .and_then(|v| v.as_s().ok())
                    .and_then(|u| UserId::parse(u).ok())
                {
                    out.entry(user).or_default();
                }
            }
        }
        Ok(out)
    }
}
