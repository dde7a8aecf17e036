//! The Mailbox table: each recipient's one-on-one messages it has not acknowledged, one row per message keyed by
//! (recipient, message id). `sync` reads the pending rows; history reads them for the delivered ticks.
//!
//! Why a table of its own: the mailbox used to be the sparse Inbox index of Messages, which cost four writes per
//! message (the message and its index entry at send; at ack, the message's delivered mark and the entry's
//! removal). A row here costs two (its put beside the message's, and the ack), and the message is written once.
//!
//! The two puts of a send are separate, so they can half-fail; the send then answers `unavailable` and the
//! client's retry finds its message stored ([`crate::service`]'s settle). That retry cannot tell "the row was
//! never put" from "the recipient acknowledged it": so the ack keeps the row as a tombstone (its `delivered_at`
//! set) instead of deleting it, until the send's claim has expired, and the retry puts a row only where none is,
//! tombstone or not. A message with no row at all was acknowledged so long ago that its tombstone is gone.
//!
//! Messages stored before this table are still in the Inbox index: `sync`, the ack and history read both, until
//! the last of those entries is acknowledged or expired and the index can be dropped (docs/architecture.md).

use super::{
    DynamoStore, Item, Read,
    expr::*,
    items::{MailboxItem, MessageItem, attr},
    keys_and_attributes,
    messages::message_key,
    outcome::{Written, failed, written},
};
use crate::{
    ids::{MessageId, UserId},
    model::{FoundDirect, StoredMessage},
    ports::Res,
};
use aws_sdk_dynamodb::{operation::query::builders::QueryFluentBuilder, types::ReturnValue};
use std::collections::{HashMap, HashSet};

fn mailbox_key(recipient: &UserId, id: &MessageId) -> Item {
    HashMap::from([
        (attr::RECIPIENT.to_owned(), s(recipient.as_str())),
        (attr::MESSAGE_ID.to_owned(), s(id.to_string())),
    ])
}

impl DynamoStore {
    /// Puts `message` in `to`'s mailbox unless a row for it is there already (pending, or a tombstone).
    /// Puts `message`'s row in `to`'s mailbox unless one is there (pending or a tombstone); whether it did.
    pub(super) async fn mailbox_put(&self, message: &StoredMessage, to: &UserId) -> Res<bool> {
        let row = MailboxItem {
            recipient: to.clone(),
            message_id: message.id,
            sender: message.from.clone(),
            delivered_at: None,
            expires_at: message.expires_at,
        };
        let r = self
            .client
            .put_item()
            .table_name(&self.tables.mailbox)
            .set_item(Some(to_item("mailbox row", &row)?))
            .condition_expression("attribute_not_exists(#message_id)")
            .set_expression_attribute_names(names(&[attr::MESSAGE_ID]))
            .send()
            .await;
        Ok(matches!(written("PutItem", r)?, Written::Applied(_)))
    }

    /// `recipient`'s rows for `ids`, pending or tombstones, read strongly.
    pub(super) async fn mailbox_rows(
        &self,
        recipient: &UserId,
        ids: &[MessageId],
    ) -> Res<HashMap<MessageId, MailboxItem>> {
        let unique: HashSet<&MessageId> = ids.iter().collect();
        let keys = unique.into_iter().map(|id| mailbox_key(recipient, id)).collect();
        let mut out = HashMap::new();
        for item in self.get_many(&self.tables.mailbox, keys, None, Read::Strong).await? {
            let row: MailboxItem = from_item("mailbox row", item)?;
            out.insert(row.message_id, row);
        }
        Ok(out)
    }

    /// Turns a pending row into a tombstone: delivered at `now` (unless an ack came first), kept until the send's
    /// claim has expired. The row as it is now.
    pub(super) async fn mailbox_ack(&self, recipient: &UserId, id: &MessageId, now: i64) -> Res<Option<MailboxItem>> {
        let kept_until = now / 1000 + self.settings.claim_ttl_secs;
        let r = self
            .client
            .update_item()
            .table_name(&self.tables.mailbox)
            .set_key(Some(mailbox_key(recipient, id)))
            .update_expression("SET #delivered_at = if_not_exists(#delivered_at, :now), #expires_at = :kept")
            .condition_expression("attribute_exists(#message_id)")
            .set_expression_attribute_names(names(&[attr::DELIVERED_AT, attr::EXPIRES_AT, attr::MESSAGE_ID]))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":kept", n(kept_until))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match written("UpdateItem", r)? {
            Written::Applied(out) => Ok(Some(from_item("mailbox row", out.attributes.unwrap_or_default())?)),
            Written::Refused(_) => Ok(None),
        }
    }

    /// The ids of `user`'s pending rows after `after`, oldest first: up to `limit`, and whether more may follow.
    /// Tombstones are read and dropped (a filter): a page reads on until it has `limit` + 1 pending rows or the
    /// partition ends, so a day of acknowledged messages never ends a page early.
    pub(super) async fn mailbox_pending(
        &self,
        user: &UserId,
        after: Option<&MessageId>,
        limit: usize,
    ) -> Res<(Vec<MessageId>, bool)> {
        let q = self
            .client
            .query()
            .table_name(&self.tables.mailbox)
            // Strong: a message stored a moment ago, or acknowledged a moment ago, shows as it is.
            .consistent_read(true)
            .filter_expression("attribute_not_exists(#delivered_at)")
            .projection_expression("#message_id")
            .set_expression_attribute_names(names(&[attr::RECIPIENT, attr::MESSAGE_ID, attr::DELIVERED_AT]))
            .expression_attribute_values(":u", s(user.as_str()))
            .limit((2 * limit + 2) as i32);
        let q = match after {
            Some(id) => q
                .key_condition_expression("#recipient = :u AND #message_id > :after")
                .expression_attribute_values(":after", s(id.to_string())),
            None => q.key_condition_expression("#recipient = :u"),
        };
        let mut items = Vec::new();
        let unread = self
            .pages_while(q, |page| {
                items.extend(page.items.unwrap_or_default());
                items.len() <= limit
            })
            .await?;
        let mut ids = page_ids(items)?;
        let more = ids.len() > limit || unread;
        ids.truncate(limit);
        Ok((ids, more))
    }

    /// Of `ids`, those `recipient` has not acknowledged: pending rows of its mailbox (one strong read of exactly
    /// those keys, so the cost is bounded by `ids` whatever the mailbox holds), or, for ids without a row,
    /// entries of the old Inbox index (a range query over their span, which only ever shrinks).
    pub(super) async fn mailbox_undelivered(&self, recipient: &UserId, ids: &[MessageId]) -> Res<HashSet<MessageId>> {
        let rows = self.mailbox_rows(recipient, ids).await?;
        let mut pending: HashSet<MessageId> = rows
            .values()
            .filter(|r| r.delivered_at.is_none())
            .map(|r| r.message_id)
            .collect();
        let rest: HashSet<&MessageId> = ids.iter().filter(|id| !rows.contains_key(id)).collect();
        let (Some(lo), Some(hi)) = (rest.iter().min(), rest.iter().max()) else {
            return Ok(pending);
        };
        let legacy = self
            .legacy_index(recipient)
            .key_condition_expression("#inbox = :u AND #message_id BETWEEN :lo AND :hi")
            .projection_expression("#message_id")
            .set_expression_attribute_names(names(&[attr::INBOX, attr::MESSAGE_ID]))
            .expression_attribute_values(":lo", s(lo.to_string()))
            .expression_attribute_values(":hi", s(hi.to_string()));
        let legacy = page_ids(self.query_all(legacy).await?)?;
        pending.extend(legacy.into_iter().filter(|id| rest.contains(id)));
        Ok(pending)
    }

    /// The stored message `id` to `to`, and its mailbox row put if it never had one (`MessageStore::stored_direct`).
    /// One strong read of both, at once: a refused conditional put is billed as a write, and the row is nearly
    /// always there. A message stored before this table waits in the old index instead (its `inbox`), and must
    /// not wait in both. Past the claim's lifetime nothing is put: the tombstone of an acknowledged message lives
    /// that long, so a missing row then means "acknowledged long ago" (an expired claim may linger before
    /// DynamoDB deletes it).
    pub(super) async fn stored_and_kept_in_mailbox(&self, id: &MessageId, to: &UserId) -> Res<Option<FoundDirect>> {
        let (messages, mailbox) = (&self.tables.messages, &self.tables.mailbox);
        let mut got = self
            .batch_get(HashMap::from([
                (
                    messages.clone(),
                    keys_and_attributes(vec![message_key(id)], None, Read::Strong)?,
                ),
                (
                    mailbox.clone(),
                    keys_and_attributes(vec![mailbox_key(to, id)], None, Read::Strong)?,
                ),
            ]))
            .await?;
        let Some(item) = got.remove(messages).and_then(|items| items.into_iter().next()) else {
            return Ok(None);
        };
        let item: MessageItem = from_item("message", item)?;
        let boxed = item.inbox.is_some() || got.remove(mailbox).is_some_and(|rows| !rows.is_empty());
        let message = StoredMessage::try_from(item)?;
        let within_claim = crate::now_ms() - message.timestamp() < self.settings.claim_ttl_secs * 1000;
        let put_back = !boxed && within_claim && self.mailbox_put(&message, to).await?;
        Ok(Some(FoundDirect { message, put_back }))
    }

    /// The old Inbox index's entries of `user` after `after`, oldest first, with their messages (the index
    /// projects them all): up to `limit`, and whether more may follow.
    pub(super) async fn legacy_inbox(
        &self,
        user: &UserId,
        after: Option<&MessageId>,
        limit: usize,
    ) -> Res<(Vec<StoredMessage>, bool)> {
        let mut q = self.legacy_index(user).limit(limit as i32 + 1);
        q = match after {
            Some(id) => q
                .key_condition_expression("#inbox = :u AND #message_id > :after")
                .set_expression_attribute_names(names(&[attr::INBOX, attr::MESSAGE_ID]))
                .expression_attribute_values(":after", s(id.to_string())),
            None => q
                .key_condition_expression("#inbox = :u")
                .set_expression_attribute_names(names(&[attr::INBOX])),
        };
        let r = q.send().await.map_err(failed("Query"))?;
        let mut messages = r
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|i| from_item::<MessageItem>("message", i).and_then(StoredMessage::try_from))
            .collect::<Res<Vec<_>>>()?;
        let more = messages.len() > limit || r.last_evaluated_key.is_some() && messages.len() >= limit;
        messages.truncate(limit);
        Ok((messages, more))
    }

    /// A query of `user`'s entries in the old Inbox index; the key condition, over `#inbox` and `#message_id`, is
    /// the caller's.
    fn legacy_index(&self, user: &UserId) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.tables.messages)
            .index_name(attr::INBOX_INDEX)
            .expression_attribute_values(":u", s(user.as_str()))
    }
}

/// The message ids of a query's items.
fn page_ids(items: Vec<Item>) -> Res<Vec<MessageId>> {
    items
        .into_iter()
        .map(|i| {
            let id = i.get(attr::MESSAGE_ID).and_then(|v| v.as_s().ok());
            id.and_then(|id| MessageId::parse(id).ok())
                .ok_or_else(|| crate::error::BackendError::corrupt("mailbox row", "no valid message id"))
        })
        .collect()
}
