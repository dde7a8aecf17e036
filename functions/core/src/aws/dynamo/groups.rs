//! [`GroupStore`] on DynamoDB: Groups (the item with its server sequence and member count), GroupMembers (a row
//! per member with its marks; the keys-only ByUser index lists a user's groups) and GroupHistory (a group's
//! messages by sequence).

use super::{
    BATCH_GET_MAX, DynamoStore, Read, TRANSACTION_MAX,
    expr::*,
    items::{GroupHistoryItem, GroupItem, MemberItem, attr},
    keys_and_attributes,
    outcome::{Committed, Written, applied, failed, retryable, written},
    tx_delete, tx_put as put, tx_update as update,
};
use crate::{
    error::BackendError,
    frames::{LastMessage, Target},
    ids::{GroupId, MessageId, UserId},
    model::{Added, Group, Mark, Marked, Member, StoredMessage},
    ports::{GroupStore, GroupsPage, Res},
};
use aws_sdk_dynamodb::types::{Delete, Put, ReturnValue, ReturnValuesOnConditionCheckFailure, Update};
use std::collections::HashMap;

impl GroupStore for DynamoStore {
    async fn create_group(&self, group: &Group, members: &[Member]) -> Res<()> {
        let group_item = to_item("group", &GroupItem::new(group))?;
        let rows = members
            .iter()
            .map(|m| to_item("member", &MemberItem::new(&group.id, m)))
            .collect::<Res<Vec<_>>>()?;
        if rows.len() < TRANSACTION_MAX {
            let mut items = vec![put(Put::builder()
                .table_name(&self.tables.groups)
                .set_item(Some(group_item))
                .condition_expression("attribute_not_exists(#group_id)")
                .set_expression_attribute_names(names(&[attr::GROUP_ID])))?];
            for r in rows {
                items.push(put(Put::builder()
                    .table_name(&self.tables.group_members)
                    .set_item(Some(r)))?);
            }
            self.client
                .transact_write_items()
                .set_transact_items(Some(items))
                .send()
                .await
                .map_err(failed("TransactWriteItems"))?;
            return Ok(());
        }
        // Too many for one transaction: members first, the group item last (until it exists, no group is visible).
        self.batch_put(&self.tables.group_members, rows).await?;
        self.client
            .put_item()
            .table_name(&self.tables.groups)
            .set_item(Some(group_item))
            .condition_expression("attribute_not_exists(#group_id)")
            .set_expression_attribute_names(names(&[attr::GROUP_ID]))
            .send()
            .await
            .map_err(failed("PutItem"))?;
        Ok(())
    }

    // Strong: a member added an instant ago may send at once, and a mark is checked against the newest sequence.
    async fn membership(&self, group: &GroupId, user: &UserId) -> Res<(Option<Group>, Option<Member>)> {
        let mut got = self
            .batch_get(HashMap::from([
                (
                    self.tables.groups.clone(),
                    keys_and_attributes(vec![group_key(group)], None, Read::Strong)?,
                ),
                (
                    self.tables.group_members.clone(),
                    keys_and_attributes(vec![member_key(group, user)], None, Read::Strong)?,
                ),
            ]))
            .await?;
        let g = got.remove(&self.tables.groups).and_then(|mut v| v.pop());
        let m = got.remove(&self.tables.group_members).and_then(|mut v| v.pop());
        Ok((
            g.map(|i| from_item::<GroupItem>("group", i).map(Group::from))
                .transpose()?,
            m.map(|i| from_item::<MemberItem>("member", i).map(Member::from))
                .transpose()?,
        ))
    }

    async fn members(&self, group: &GroupId) -> Res<Vec<Member>> {
        let q = self
            .client
            .query()
            .table_name(&self.tables.group_members)
            .key_condition_expression("#group_id = :g")
            // Strong: a member added an instant ago gets the next message.
            .consistent_read(true)
            .set_expression_attribute_names(names(&[attr::GROUP_ID]))
            .expression_attribute_values(":g", s(group.as_str()));
        self.query_all(q)
            .await?
            .into_iter()
            .map(|i| from_item::<MemberItem>("member", i).map(Member::from))
            .collect()
    }

    async fn recipients(&self, group: &GroupId, seq: u64) -> Res<Vec<UserId>> {
        let q = self
            .client
            .query()
            .table_name(&self.tables.group_members)
            .key_condition_expression("#group_id = :g")
            // Strong: a member added an instant ago gets the next message. The filter costs nothing more (a query
            // is billed by what it reads) and leaves out whoever joined at or after the message.
            .consistent_read(true)
            .filter_expression("#joined_seq < :seq")
            .projection_expression("#user_id")
            .set_expression_attribute_names(names(&[attr::GROUP_ID, attr::USER_ID, attr::JOINED_SEQ]))
            .expression_attribute_values(":g", s(group.as_str()))
            .expression_attribute_values(":seq", n(seq));
        self.query_user_ids(q, attr::USER_ID).await
    }

    async fn add_member(&self, group: &GroupId, member: &Member, max_members: u64) -> Res<Added> {
        let row = put(Put::builder()
            .table_name(&self.tables.group_members)
            .set_item(Some(to_item("member", &MemberItem::new(group, member))?))
            .condition_expression("attribute_not_exists(#user_id)")
            .set_expression_attribute_names(names(&[attr::USER_ID])))?;
        let count = update(
            Update::builder()
                .table_name(&self.tables.groups)
                .set_key(Some(group_key(group)))
                .update_expression("ADD #member_count :one")
                .condition_expression("attribute_exists(#group_id) AND #member_count < :max")
                .set_expression_attribute_names(names(&[attr::MEMBER_COUNT, attr::GROUP_ID]))
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":max", n(max_members)),
        )?;
        let outcome = self.transact(vec![row, count]).await?;
        Ok(match outcome {
            Committed::Yes => Added::Added,
            _ if outcome.failed_condition(0) => Added::AlreadyMember,
            _ if outcome.failed_condition(1) => {
                let (g, _) = self.membership(group, &member.user).await?;
                if g.is_some() { Added::Full } else { Added::NoGroup }
            }
            Committed::Cancelled(_) => return Err(retryable("TransactWriteItems", "transaction conflict")),
        })
    }

    async fn remove_member(&self, group: &GroupId, user: &UserId) -> Res<bool> {
        let row = tx_delete(
            Delete::builder()
                .table_name(&self.tables.group_members)
                .set_key(Some(member_key(group, user)))
                .condition_expression("attribute_exists(#user_id)")
                .set_expression_attribute_names(names(&[attr::USER_ID])),
        )?;
        let count = update(
            Update::builder()
                .table_name(&self.tables.groups)
                .set_key(Some(group_key(group)))
                .update_expression("ADD #member_count :minus")
                .condition_expression("attribute_exists(#group_id)")
                .set_expression_attribute_names(names(&[attr::MEMBER_COUNT, attr::GROUP_ID]))
                .expression_attribute_values(":minus", n(-1)),
        )?;
        let outcome = self.transact(vec![row, count]).await?;
        match outcome {
            Committed::Yes => Ok(true),
            _ if outcome.failed_condition(0) => Ok(false),
            // The group item is gone (the group ended): removing the row alone is what is left to do.
            _ if outcome.failed_condition(1) => {
                self.client
                    .delete_item()
                    .table_name(&self.tables.group_members)
                    .set_key(Some(member_key(group, user)))
                    .send()
                    .await
                    .map_err(failed("DeleteItem"))?;
                Ok(true)
            }
            Committed::Cancelled(_) => Err(retryable("TransactWriteItems", "transaction conflict")),
        }
    }

    async fn transfer(&self, group: &GroupId, from: &UserId, to: &UserId) -> Res<bool> {
        let r = self
            .client
            .update_item()
            .table_name(&self.tables.groups)
            .set_key(Some(group_key(group)))
            .update_expression("SET #owner = :to")
            .condition_expression("#owner = :from")
            .set_expression_attribute_names(names(&[attr::OWNER]))
            .expression_attribute_values(":to", s(to.as_str()))
            .expression_attribute_values(":from", s(from.as_str()))
            .send()
            .await;
        applied("UpdateItem", r)
    }

    async fn delete_group(&self, group: &GroupId) -> Res<()> {
        self.client
            .delete_item()
            .table_name(&self.tables.groups)
            .set_key(Some(group_key(group)))
            .send()
            .await
            .map_err(failed("DeleteItem"))?;
        Ok(())
    }

    async fn groups_of(&self, user: &UserId) -> Res<Vec<(Group, Member)>> {
        // ByUser holds keys only (so members' marks never write it): the group ids, then each group's item and the
        // user's member row in one BatchGetItem per 50 groups.
        let q = self
            .client
            .query()
            .table_name(&self.tables.group_members)
            .index_name(attr::BY_USER_INDEX)
            .key_condition_expression("#user_id = :u")
            .set_expression_attribute_names(names(&[attr::USER_ID]))
            .expression_attribute_values(":u", s(user.as_str()));
        let ids: Vec<GroupId> = self
            .query_all(q)
            .await?
            .iter()
            .map(|i| {
                let id = i.get(attr::GROUP_ID).and_then(|v| v.as_s().ok()).map(String::as_str);
                GroupId::parse(id.unwrap_or_default()).map_err(|e| BackendError::corrupt("member", e))
            })
            .collect::<Res<_>>()?;
        self.groups_with_memberships(user, &ids).await
    }

    async fn group_count(&self, user: &UserId, cap: u64) -> Res<u64> {
        // Counted on the keys-only ByUser index, page by page (each reads at most 1 MB), stopping at `cap`.
        let mut counted = 0u64;
        let mut start = None;
        loop {
            let r = self
                .client
                .query()
                .table_name(&self.tables.group_members)
                .index_name(attr::BY_USER_INDEX)
                .key_condition_expression("#user_id = :u")
                .set_expression_attribute_names(names(&[attr::USER_ID]))
                .expression_attribute_values(":u", s(user.as_str()))
                .select(aws_sdk_dynamodb::types::Select::Count)
                .limit(cap.saturating_sub(counted).clamp(1, 10_000) as i32)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(failed("Query"))?;
            counted += r.count() as u64;
            start = r.last_evaluated_key;
            if start.is_none() || counted >= cap {
                return Ok(counted.min(cap));
            }
        }
    }

    async fn groups_page(&self, user: &UserId, after: Option<&GroupId>, limit: usize) -> Res<GroupsPage> {
        let mut q = self
            .client
            .query()
            .table_name(&self.tables.group_members)
            .index_name(attr::BY_USER_INDEX)
            .limit(limit.clamp(1, 1000) as i32)
            .expression_attribute_values(":u", s(user.as_str()));
        q = match after {
            Some(g) => q
                .key_condition_expression("#user_id = :u AND #group_id > :after")
                .set_expression_attribute_names(names(&[attr::USER_ID, attr::GROUP_ID]))
                .expression_attribute_values(":after", s(g.as_str())),
            None => q
                .key_condition_expression("#user_id = :u")
                .set_expression_attribute_names(names(&[attr::USER_ID])),
        };
        let r = q.send().await.map_err(failed("Query"))?;
        let ids: Vec<GroupId> = r
            .items()
            .iter()
            .map(|i| {
                let id = i.get(attr::GROUP_ID).and_then(|v| v.as_s().ok()).map(String::as_str);
                GroupId::parse(id.unwrap_or_default()).map_err(|e| BackendError::corrupt("member", e))
            })
            .collect::<Res<_>>()?;
        let next = if r.last_evaluated_key().is_some() {
            ids.last().cloned()
        } else {
            None
        };
        let mut page = self.groups_with_memberships(user, &ids).await?;
        page.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        Ok((page, next))
    }

    async fn next_seq(&self, group: &GroupId, last: &LastMessage) -> Res<Option<u64>> {
        let r = self
            .client
            .update_item()
            .table_name(&self.tables.groups)
            .set_key(Some(group_key(group)))
            .update_expression(
                // The marks of an edit or delete of the message this one replaces go with it.
                "ADD #last_seq :one SET #last_message_id = :mid, #last_from = :from, #last_preview = :preview, \
                 #last_ts = :ts REMOVE #last_edited_at, #last_deleted",
            )
            .condition_expression("attribute_exists(#group_id)")
            .set_expression_attribute_names(names(&[
                attr::LAST_SEQ,
                attr::LAST_MESSAGE_ID,
                attr::LAST_FROM,
                attr::LAST_PREVIEW,
                attr::LAST_TS,
                attr::LAST_EDITED_AT,
                attr::LAST_DELETED,
                attr::GROUP_ID,
            ]))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":mid", s(last.message_id.to_string()))
            .expression_attribute_values(":from", s(last.from.as_str()))
            .expression_attribute_values(":preview", s(last.preview.as_deref().unwrap_or_default()))
            .expression_attribute_values(":ts", n(last.timestamp))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        match written("UpdateItem", r)? {
            Written::Applied(out) => out
                .attributes
                .and_then(|a| number(&a, attr::LAST_SEQ))
                .map(Some)
                .ok_or_else(|| BackendError::corrupt("group", "ADD returned no sequence")),
            Written::Refused(_) => Ok(None),
        }
    }

    async fn record_group_message(&self, message: &StoredMessage) -> Res<()> {
        let Target::Group(group) = &message.target else {
            return Err(BackendError::corrupt("message", "not a group message"));
        };
        let item = GroupHistoryItem {
            group_id: group.clone(),
            seq: message.seq.unwrap_or_default(),
            message_id: message.id,
            timestamp: message.timestamp(),
            sender: message.from.clone(),
            expires_at: message.expires_at,
        };
        self.client
            .put_item()
            .table_name(&self.tables.group_history)
            .set_item(Some(to_item("group history row", &item)?))
            .send()
            .await
            .map_err(failed("PutItem"))?;
        Ok(())
    }

    async fn recorded_at(&self, group: &GroupId, seq: u64) -> Res<Option<MessageId>> {
        let r = self
            .client
            .get_item()
            .table_name(&self.tables.group_history)
            .key(attr::GROUP_ID, s(group.as_str()))
            .key(attr::SEQ, n(seq))
            .consistent_read(true)
            .send()
            .await
            .map_err(failed("GetItem"))?;
        r.item
            .map(|i| from_item::<GroupHistoryItem>("group history row", i).map(|row| row.message_id))
            .transpose()
    }

    async fn mark(&self, group: &GroupId, user: &UserId, mark: Mark, seq: u64) -> Res<Marked> {
        let field = match mark {
            Mark::Ack => attr::LAST_ACK_SEQ,
            Mark::Read => attr::LAST_READ_SEQ,
        };
        let r = self
            .client
            .update_item()
            .table_name(&self.tables.group_members)
            .set_key(Some(member_key(group, user)))
            .update_expression("SET #mark = :seq")
            .condition_expression("attribute_exists(#user_id) AND (attribute_not_exists(#mark) OR #mark < :seq)")
            .expression_attribute_names("#mark", field)
            .expression_attribute_names("#user_id", attr::USER_ID)
            .expression_attribute_values(":seq", n(seq))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        Ok(match written("UpdateItem", r)? {
            Written::Applied(_) => Marked::Moved,
            Written::Refused(Some(_)) => Marked::Unchanged,
            Written::Refused(None) => Marked::NotMember,
        })
    }
}

impl DynamoStore {
    /// Each group's item and `user`'s member row, in one BatchGetItem per 50 groups.
    async fn groups_with_memberships(&self, user: &UserId, ids: &[GroupId]) -> Res<Vec<(Group, Member)>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(BATCH_GET_MAX / 2) {
            let mut got = self
                .batch_get(HashMap::from([
                    (
                        self.tables.groups.clone(),
                        keys_and_attributes(chunk.iter().map(group_key).collect(), None, Read::Strong)?,
                    ),
                    (
                        self.tables.group_members.clone(),
                        keys_and_attributes(chunk.iter().map(|g| member_key(g, user)).collect(), None, Read::Strong)?,
                    ),
                ]))
                .await?;
            let mut groups: HashMap<GroupId, Group> = got
                .remove(&self.tables.groups)
                .unwrap_or_default()
                .into_iter()
                .map(|i| from_item::<GroupItem>("group", i).map(|g| (g.group_id.clone(), g.into())))
                .collect::<Res<_>>()?;
            // A row whose group item is gone (ended, or a create that failed half-way) is not a group; a row gone
            // since the query (the user left) is not a membership.
            for item in got.remove(&self.tables.group_members).unwrap_or_default() {
                let row: MemberItem = from_item("member", item)?;
                if let Some(group) = groups.remove(&row.group_id) {
                    out.push((group, row.into()));
                }
            }
        }
        Ok(out)
    }
}
