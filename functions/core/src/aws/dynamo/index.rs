//! [`IndexStore`] on DynamoDB: the MessageIndex row of a one-on-one message (one, in the recipient's partition)
//! and both participants' Sessions (preview and marks), written by the index consumer; and `read`, which moves a
//! read mark.
//!
//! Unread is not written here: the recipient's row is marked received (`in`), and `sessions` counts the received
//! rows after the read mark when a sync lists the conversation (`pull.rs`). History reads a conversation from
//! both partitions (each holds the messages its owner received). Every write below is idempotent on its
//! own (a put of the same row, marks that only move forward), so a redelivered job needs no transaction to count
//! nothing twice. The in-memory fake (`testing::memory`) keeps the same rules, and the contract suite
//! (tests/tests/contract) runs the same cases against both.

use super::{
    DynamoStore, Item,
    expr::*,
    items::{IndexItem, attr, time_key},
    outcome::{Written, applied, failed, written},
};
use crate::{
    ids::UserId,
    jobs::IndexJob,
    ports::{IndexStore, Indexed, Res},
};
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};
use std::collections::HashMap;

impl IndexStore for DynamoStore {
    async fn index_direct(&self, job: &IndexJob, expires_at: Option<i64>) -> Res<Indexed> {
        // One row per message, the recipient's: the sender's history reads it from the recipient's partition
        // (`pull.rs`, `conversation`). The sender's session only takes the preview.
        let row = to_item("index row", &index_row(&job.to, &job.from, job, expires_at))?;
        let (indexed, _) = futures::try_join!(
            self.index_recipient(job, row),
            // Not applied: the session already shows a newer message.
            self.session_preview(&job.from, &job.to, job, false)
        )?;
        Ok(indexed)
    }

    async fn indexed(&self, job: &IndexJob) -> Res<bool> {
        let row = index_row(&job.to, &job.from, job, None);
        let r = self
            .client
            .get_item()
            .table_name(&self.tables.message_index)
            .key(attr::OWNER_ID, s(row.owner_id.as_str()))
            .key(attr::SK, s(row.sk))
            .projection_expression("#owner_id")
            .expression_attribute_names("#owner_id", attr::OWNER_ID)
            .consistent_read(true)
            .send()
            .await
            .map_err(failed("GetItem"))?;
        Ok(r.item.is_some())
    }

    async fn read_direct(
        &self,
        reader: &UserId,
        peer: &UserId,
        up_to: Option<i64>,
        pending_expires_at: i64,
    ) -> Res<Option<i64>> {
        match up_to {
            Some(t) => self.read_up_to(reader, peer, t, pending_expires_at).await,
            None => self.read_all_received(reader, peer).await,
        }
    }
}

impl DynamoStore {
    /// The recipient's half of indexing: its history row, marked received (what `sessions` counts as unread),
    /// then the session's preview and marks. The row comes first, so a sync that sees the new preview or
    /// `last_recv_ts` also counts the message. A message the recipient read before it was indexed (the client
    /// showed the push) is `ReadAhead`: the read could not vouch for it, so its receipt is owed now.
    async fn index_recipient(&self, job: &IndexJob, row: Item) -> Res<Indexed> {
        // Conditional (the same write unit either way): a redelivered job still writes the marks its first run
        // may not have reached, but does not owe the receipt again.
        let put = self
            .client
            .put_item()
            .table_name(&self.tables.message_index)
            .set_item(Some(row))
            .condition_expression("attribute_not_exists(#owner_id)")
            .set_expression_attribute_names(names(&[attr::OWNER_ID]))
            .send()
            .await;
        let first = applied("PutItem", put)?;
        let read_mark = self.recipient_marks(job).await?;
        Ok(if first && read_mark.is_some_and(|t| t >= job.timestamp()) {
            Indexed::ReadAhead
        } else {
            Indexed::Done
        })
    }

    /// Moves the recipient's session forward to this message: its preview if it is the newest message either
    /// way, and `last_recv_ts` if it is the newest received. Each is conditional, so it never moves back, and
    /// repeating it changes nothing. Returns the read mark the session had.
    async fn recipient_marks(&self, job: &IndexJob) -> Res<Option<i64>> {
        // last_recv_ts <= last_ts always, so a message newer than last_ts is the newest received too.
        let (newest, before) = self.session_preview(&job.to, &job.from, job, true).await?;
        if !newest {
            let received = self
                .client
                .update_item()
                .table_name(&self.tables.sessions)
                .set_key(Some(session_key(&job.to, &job.from)))
                .update_expression("SET #last_recv_ts = :ts")
                .condition_expression("attribute_not_exists(#last_recv_ts) OR #last_recv_ts < :ts")
                .set_expression_attribute_names(names(&[attr::LAST_RECV_TS]))
                .expression_attribute_values(":ts", n(job.timestamp()))
                .send()
                .await;
            written("UpdateItem", received)?;
        }
        Ok(before.and_then(|old| number(&old, attr::LAST_READ_TS)))
    }

    /// Sets `owner`'s session with `peer` to show `job`'s message (and, with `received`, its `last_recv_ts`) if it
    /// is newer than the session's last message: whether it was, and (with `received`) the session as it was.
    async fn session_preview(
        &self,
        owner: &UserId,
        peer: &UserId,
        job: &IndexJob,
        received: bool,
    ) -> Res<(bool, Option<Item>)> {
        let mut update =
            "SET #last_message_id = :mid, #last_from = :from, #last_preview = :preview, #last_ts = :ts".to_owned();
        let mut attrs = vec![
            attr::LAST_MESSAGE_ID,
            attr::LAST_FROM,
            attr::LAST_PREVIEW,
            attr::LAST_TS,
        ];
        if received {
            update.push_str(", #last_recv_ts = :ts");
            attrs.push(attr::LAST_RECV_TS);
        }
        // See `session_update`: the row is a conversation now and must not lapse, and the edit and delete marks
        // were the replaced message's.
        update.push_str(" REMOVE #expires_at, #last_edited_at, #last_deleted");
        attrs.extend([attr::EXPIRES_AT, attr::LAST_EDITED_AT, attr::LAST_DELETED]);
        // The recipient's read mark comes back with the write (no read): it tells a message read ahead.
        let old = if received {
            ReturnValue::AllOld
        } else {
            ReturnValue::None
        };
        let old_on_refusal = if received {
            ReturnValuesOnConditionCheckFailure::AllOld
        } else {
            ReturnValuesOnConditionCheckFailure::None
        };
        let r = self
            .client
            .update_item()
            .table_name(&self.tables.sessions)
            .set_key(Some(session_key(owner, peer)))
            .update_expression(update)
            .return_values(old)
            .return_values_on_condition_check_failure(old_on_refusal)
            .condition_expression("attribute_not_exists(#last_ts) OR #last_ts < :ts")
            .set_expression_attribute_names(names(&attrs))
            .expression_attribute_values(":mid", s(job.message_id.to_string()))
            .expression_attribute_values(":from", s(job.from.as_str()))
            .expression_attribute_values(":preview", s(job.preview.as_str()))
            .expression_attribute_values(":ts", n(job.timestamp()))
            .send()
            .await;
        Ok(match written("UpdateItem", r)? {
            Written::Applied(out) => (true, out.attributes),
            Written::Refused(old) => (false, old),
        })
    }
}

/// The key of `owner`'s session with `peer`.
pub(super) fn session_key(owner: &UserId, peer: &UserId) -> Item {
    HashMap::from([
        (attr::USER_ID.to_owned(), s(owner.as_str())),
        (attr::PEER_ID.to_owned(), s(peer.as_str())),
    ])
}

/// The recipient's (`owner`'s) history row of `job`'s message from `peer`, marked received.
fn index_row(owner: &UserId, peer: &UserId, job: &IndexJob, expires_at: Option<i64>) -> IndexItem {
    IndexItem {
        owner_id: owner.clone(),
        sk: format!("{peer}#{}", time_key(&job.message_id)),
        received: true,
        expires_at,
    }
}
