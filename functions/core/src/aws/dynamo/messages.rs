//! [`MessageStore`] on DynamoDB: the send claims (SendClaims: a conditional put decides the first attempt, a
//! lease and a `done` mark make retries exact), the messages themselves (Messages), and a one-on-one message's
//! place in its recipient's mailbox until it acks (Mailbox, see `mailbox.rs`).

use super::{
    DynamoStore, Item,
    expr::*,
    items::{ClaimItem, MessageItem, attr},
    outcome::{Written, applied, failed, written},
};
use crate::{
    frames::Target,
    ids::{MessageId, UserId},
    model::{Claim, ClaimKey, Delivered, FoundDirect, StoredMessage},
    ports::{MessageStore, Res},
};
use aws_sdk_dynamodb::types::{AttributeValue as Av, ReturnValue, ReturnValuesOnConditionCheckFailure};
use futures::{StreamExt, stream};
use std::collections::HashMap;

/// Concurrent single-item writes an ack issues.
const ACK_CONCURRENCY: usize = 16;

/// The key of a Messages item, which follows from the id (the timestamp is the id's time).
pub(super) fn message_key(id: &MessageId) -> Item {
    HashMap::from([
        (attr::MESSAGE_ID.to_owned(), s(id.to_string())),
        (attr::TIMESTAMP.to_owned(), n(id.timestamp())),
    ])
}

impl MessageStore for DynamoStore {
    async fn claim(&self, key: &ClaimKey, fresh: &Claim, expires_at: i64) -> Res<Option<Claim>> {
        let item = ClaimItem::new(key, fresh, expires_at);
        let r = self
            .client
            .put_item()
            .table_name(&self.tables.send_claims)
            .set_item(Some(to_item("claim", &item)?))
            .condition_expression("attribute_not_exists(#claim)")
            .set_expression_attribute_names(names(&[attr::CLAIM]))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match written("PutItem", r)? {
            Written::Applied(_) => Ok(None),
            Written::Refused(Some(existing)) => Ok(Some(from_item::<ClaimItem>("claim", existing)?.into())),
            // An emulator that does not return the old item: read it.
            Written::Refused(None) => self.read_claim(key).await,
        }
    }

    async fn read_claim(&self, key: &ClaimKey) -> Res<Option<Claim>> {
        let r = self
            .client
            .get_item()
            .table_name(&self.tables.send_claims)
            .key(attr::CLAIM, s(key.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(failed("GetItem"))?;
        r.item
            .map(|i| from_item::<ClaimItem>("claim", i).map(Claim::from))
            .transpose()
    }

    async fn take_over(&self, key: &ClaimKey, seen: &Claim, lease_until: i64) -> Res<bool> {
        let values = HashMap::from([
            (":new".to_owned(), n(lease_until)),
            (":seen".to_owned(), n(seen.lease_until)),
            (":false".to_owned(), Av::Bool(false)),
        ]);
        self.claim_update(
            key,
            "SET #lease_until = :new",
            Some("#lease_until = :seen AND #done = :false"),
            values,
        )
        .await
    }

    async fn release(&self, key: &ClaimKey, lease_until: i64) -> Res<()> {
        let values = HashMap::from([
            (":zero".to_owned(), n(0)),
            (":mine".to_owned(), n(lease_until)),
            (":false".to_owned(), Av::Bool(false)),
        ]);
        self.claim_update(
            key,
            "SET #lease_until = :zero",
            Some("#lease_until = :mine AND #done = :false"),
            values,
        )
        .await
        .map(drop)
    }

    async fn forget(&self, key: &ClaimKey, claim: &Claim) -> Res<()> {
        // Only the claim this attempt made: another attempt's claim for the same key stays.
        let r = self
            .client
            .delete_item()
            .table_name(&self.tables.send_claims)
            .key(attr::CLAIM, s(key.as_str()))
            .condition_expression("#message_id = :mid")
            .set_expression_attribute_names(names(&[attr::MESSAGE_ID]))
            .expression_attribute_values(":mid", s(claim.message_id.to_string()))
            .send()
            .await;
        applied("DeleteItem", r).map(drop)
    }

    async fn put_message(&self, message: &StoredMessage) -> Res<Option<StoredMessage>> {
        let stored = self.put_message_item(message);
        match &message.target {
            // The mailbox row beside the message, at once: see `mailbox.rs` for what a half-failure leaves.
            Target::To(to) => {
                let (stored, boxed) = futures::join!(stored, self.mailbox_put(message, to));
                let stored = stored?;
                boxed?;
                Ok(stored)
            }
            Target::Group(_) => stored.await,
        }
    }

    async fn stored_direct(&self, id: &MessageId, to: &UserId) -> Res<Option<FoundDirect>> {
        self.stored_and_kept_in_mailbox(id, to).await
    }

    async fn get_message(&self, id: &MessageId) -> Res<Option<StoredMessage>> {
        let r = self
            .client
            .get_item()
            .table_name(&self.tables.messages)
            .set_key(Some(message_key(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(failed("GetItem"))?;
        r.item
            .map(|i| from_item::<MessageItem>("message", i).and_then(StoredMessage::try_from))
            .transpose()
    }

    async fn mark_delivered(&self, acker: &UserId, ids: &[MessageId], now: i64) -> Res<Vec<Delivered>> {
        // One strong read of the acker's mailbox rows first: a conditional write is billed even when its
        // condition fails, so an ack of 100 ids that are not the acker's would cost 100 writes. Only pending rows
        // are written; a tombstone gets its receipt again without a write. Ids without a row (messages stored
        // before the Mailbox table, acknowledged long ago, or not the acker's) are looked up in Messages.
        let rows = self.mailbox_rows(acker, ids).await?;
        let mut out = Vec::new();
        let mut work = Vec::new();
        for row in rows.values() {
            match row.delivered_at {
                Some(delivered_at) => out.push(Delivered {
                    id: row.message_id,
                    from: row.sender.clone(),
                    delivered_at,
                }),
                None => work.push(Pending::Mailbox(row.message_id)),
            }
        }
        let rest: Vec<MessageId> = ids.iter().filter(|id| !rows.contains_key(id)).copied().collect();
        for item in self.message_items(&rest).await? {
            if item.recipient.as_ref() != Some(acker) {
                continue;
            }
            match (item.delivered_at, item.inbox.is_some()) {
                (Some(delivered_at), _) => out.push(Delivered {
                    id: item.message_id,
                    from: item.sender,
                    delivered_at,
                }),
                (None, true) => work.push(Pending::Legacy(item.message_id)),
                // Its tombstone expired: acknowledged long ago, at a time no longer kept.
                (None, false) => out.push(Delivered {
                    id: item.message_id,
                    from: item.sender,
                    delivered_at: item.timestamp,
                }),
            }
        }
        let results: Vec<Res<Option<Delivered>>> = stream::iter(work)
            .map(move |p| async move { self.ack_pending(acker, p, now).await })
            .buffer_unordered(ACK_CONCURRENCY)
            .collect()
            .await;
        for r in results {
            out.extend(r?);
        }
        Ok(out)
    }
}

/// A message an ack delivers: a pending row of the Mailbox table, or an entry of the old Inbox index.
enum Pending {
    Mailbox(MessageId),
    Legacy(MessageId),
}

impl DynamoStore {
    /// Delivers one pending message to `acker`; `None` if it was not pending after all.
    async fn ack_pending(&self, acker: &UserId, pending: Pending, now: i64) -> Res<Option<Delivered>> {
        match pending {
            Pending::Mailbox(id) => Ok(self.mailbox_ack(acker, &id, now).await?.and_then(|row| {
                Some(Delivered {
                    id,
                    from: row.sender,
                    delivered_at: row.delivered_at?,
                })
            })),
            Pending::Legacy(id) => Ok(self.ack_one(acker, &id, now).await?.and_then(|m| {
                Some(Delivered {
                    id,
                    from: m.from,
                    delivered_at: m.delivered_at?,
                })
            })),
        }
    }

    /// A conditional update of a claim; whether it applied.
    async fn claim_update(&self, key: &ClaimKey, update: &str, condition: Option<&str>, values: Item) -> Res<bool> {
        let exprs = [update, condition.unwrap_or_default()];
        let r = self
            .client
            .update_item()
            .table_name(&self.tables.send_claims)
            .key(attr::CLAIM, s(key.as_str()))
            .update_expression(update)
            .set_condition_expression(condition.map(str::to_owned))
            .set_expression_attribute_names(names_in(&exprs, &[attr::LEASE_UNTIL, attr::DONE, attr::SEQ]))
            .set_expression_attribute_values(values_in(&exprs, values))
            .send()
            .await;
        applied("UpdateItem", r)
    }

    /// The Messages item of `message`, put unless one is stored already (then that one, as stored).
    async fn put_message_item(&self, message: &StoredMessage) -> Res<Option<StoredMessage>> {
        let item = to_item("message", &MessageItem::new(message))?;
        let r = self
            .client
            .put_item()
            .table_name(&self.tables.messages)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#message_id)")
            .set_expression_attribute_names(names(&[attr::MESSAGE_ID]))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match written("PutItem", r)? {
            Written::Applied(_) => Ok(None),
            Written::Refused(Some(existing)) => Ok(Some(from_item::<MessageItem>("message", existing)?.try_into()?)),
            Written::Refused(None) => self.get_message(&message.id).await,
        }
    }

    /// Marks a message of the old Inbox index delivered and takes it out of the index, if it is addressed to
    /// `acker`; the message as it is now.
    async fn ack_one(&self, acker: &UserId, id: &MessageId, now: i64) -> Res<Option<StoredMessage>> {
        let r = self
            .client
            .update_item()
            .table_name(&self.tables.messages)
            .set_key(Some(message_key(id)))
            .update_expression("SET #delivered_at = if_not_exists(#delivered_at, :now) REMOVE #inbox")
            .condition_expression("#recipient = :acker")
            .set_expression_attribute_names(names(&[attr::DELIVERED_AT, attr::INBOX, attr::RECIPIENT]))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":acker", s(acker.as_str()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match written("UpdateItem", r)? {
            Written::Applied(out) => {
                let item: MessageItem = from_item("message", out.attributes.unwrap_or_default())?;
                Ok(Some(item.try_into()?))
            }
            // Not addressed to the acker, or no such message: nothing to acknowledge.
            Written::Refused(_) => Ok(None),
        }
    }
}
