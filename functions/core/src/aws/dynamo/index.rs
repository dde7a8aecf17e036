//! [`IndexStore`] on DynamoDB: each participant's MessageIndex row of a one-on-one message and their Sessions
//! (unread count, preview, marks), written by the index consumer; and `read`, which moves a read mark.
//!
//! Unread counting lives in the condition expressions below; the in-memory fake (`testing::memory`) keeps the
//! same rules, and the contract suite (tests/tests/contract) runs the same cases against both.

use super::{
    DynamoStore, Item,
    expr::*,
    items::{IndexItem, attr, time_key},
    outcome::{Committed, Written, applied, committed, failed, retryable, unbuildable, written},
};
use crate::{
    ids::UserId,
    jobs::IndexJob,
    ports::{IndexStore, Res},
};
use aws_sdk_dynamodb::types::{Put, ReturnValue, TransactWriteItem, Update};
use std::{collections::HashMap, time::Duration};

/// What the recipient's indexing transaction writes to the session besides the row.
#[derive(Debug, Clone, Copy)]
struct SessionWrite {
    /// Preview and time of the newest message.
    set_last: bool,
    /// `last_recv_ts`: time of the newest message received.
    set_recv: bool,
    count_unread: bool,
    expect: Expect,
}

#[derive(Debug, Clone, Copy)]
enum Expect {
    /// The session's last message and last read are older than the message (or absent).
    Newest,
    /// Only the read mark is older than the message (or absent): the count commutes with other writers.
    ReadBefore,
}

enum Indexed {
    Applied,
    /// The row exists: this message was indexed (and counted) before.
    Already,
    /// The session's condition failed (see [`Expect`]).
    SessionChanged,
    /// Another transaction held the session at that instant.
    Conflict,
}

impl IndexStore for DynamoStore {
    async fn index_direct(&self, job: &IndexJob, expires_at: Option<i64>) -> Res<()> {
        let recipient_row = to_item("index row", &index_row(&job.to, &job.from, "received", job, expires_at))?;
        let sender_row = to_item("index row", &index_row(&job.from, &job.to, "sent", job, expires_at))?;
        futures::try_join!(
            self.index_recipient(job, recipient_row),
            self.index_sender(job, sender_row)
        )?;
        Ok(())
    }

    async fn read_direct(&self, reader: &UserId, peer: &UserId, up_to: Option<i64>) -> Res<Option<i64>> {
        let update = self
            .client
            .update_item()
            .table_name(&self.tables.sessions)
            .set_key(Some(session_key(reader, peer)))
            .expression_attribute_values(":zero", n(0));
        if let Some(t) = up_to {
            // The client names what it showed: the mark moves there even before the index consumer has indexed
            // that message (it then counts nothing up to the mark). Never backwards.
            let r = update
                .update_expression("SET #unread = :zero, #last_read_ts = :t")
                .condition_expression("attribute_not_exists(#last_read_ts) OR #last_read_ts < :t")
                .set_expression_attribute_names(names(&[attr::UNREAD, attr::LAST_READ_TS]))
                .expression_attribute_values(":t", n(t))
                .send()
                .await;
            return Ok(applied("UpdateItem", r)?.then_some(t));
        }
        let r = update
            .update_expression("SET #unread = :zero, #last_read_ts = #last_recv_ts")
            // Nothing received from the peer yet: nothing to read (and the read mark must not move back).
            .condition_expression("attribute_exists(#last_recv_ts)")
            .set_expression_attribute_names(names(&[attr::UNREAD, attr::LAST_READ_TS, attr::LAST_RECV_TS]))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match written("UpdateItem", r)? {
            Written::Applied(out) => {
                let old = out.attributes.unwrap_or_default();
                let recv: Option<i64> = number(&old, attr::LAST_RECV_TS);
                let read: Option<i64> = number(&old, attr::LAST_READ_TS);
                Ok(recv.filter(|r| read.is_none_or(|d| d < *r)))
            }
            Written::Refused(_) => Ok(None),
        }
    }
}

impl DynamoStore {
    /// The recipient's half of indexing: its history row and its unread count, in one transaction so that unread
    /// counts each message exactly once (the row's `attribute_not_exists` condition is the idempotency guard);
    /// and the session's preview and marks, which only move forward.
    ///
    /// The fast path writes everything in one transaction when the message is the newest the session has seen.
    /// Otherwise (out of order, read ahead, or other messages of the conversation indexed at the same time) the
    /// count is written with a condition on the read mark alone, which commutes with every other writer, so
    /// retries converge instead of chasing a session that keeps changing; the preview and marks follow as
    /// conditional updates that never move back.
    async fn index_recipient(&self, job: &IndexJob, row: Item) -> Res<()> {
        let fast = SessionWrite {
            set_last: true,
            set_recv: true,
            count_unread: true,
            expect: Expect::Newest,
        };
        match self.index_transaction(job, &row, fast).await? {
            Indexed::Applied => return Ok(()),
            // Indexed before, perhaps by the slow path, whose marks may not have been written: write them.
            Indexed::Already => return self.recipient_marks(job).await,
            Indexed::SessionChanged | Indexed::Conflict => {}
        }
        let count = SessionWrite {
            set_last: false,
            set_recv: false,
            count_unread: true,
            expect: Expect::ReadBefore,
        };
        let mut backoff_ms = 10;
        for attempt in 0..10 {
            if attempt > 0 {
                // Another transaction held the session at that instant: back off with jitter and write the same.
                tokio::time::sleep(Duration::from_millis(backoff_ms + jitter_ms(backoff_ms))).await;
                backoff_ms = (backoff_ms * 2).min(400);
            }
            match self.index_transaction(job, &row, count).await? {
                Indexed::Applied | Indexed::Already => return self.recipient_marks(job).await,
                // Read past this message already: index it without counting it.
                Indexed::SessionChanged => {
                    self.put_row_once(&row).await?;
                    return self.recipient_marks(job).await;
                }
                Indexed::Conflict => {}
            }
        }
        Err(retryable(
            "TransactWriteItems",
            "the session stayed locked by other transactions",
        ))
    }

    /// Moves the recipient's session forward to this message: its preview if it is the newest message either
    /// way, and `last_recv_ts` if it is the newest received. Each is conditional, so it never moves back, and
    /// repeating it changes nothing.
    async fn recipient_marks(&self, job: &IndexJob) -> Res<()> {
        // last_recv_ts <= last_ts always, so a message newer than last_ts is the newest received too.
        if self.session_preview(&job.to, &job.from, job, true).await? {
            return Ok(());
        }
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
        applied("UpdateItem", received).map(drop)
    }

    /// Writes an index row unless it exists.
    async fn put_row_once(&self, row: &Item) -> Res<()> {
        let r = self
            .client
            .put_item()
            .table_name(&self.tables.message_index)
            .set_item(Some(row.clone()))
            .condition_expression("attribute_not_exists(#owner_id)")
            .set_expression_attribute_names(names(&[attr::OWNER_ID]))
            .send()
            .await;
        applied("PutItem", r).map(drop)
    }

    async fn index_transaction(&self, job: &IndexJob, row: &Item, w: SessionWrite) -> Res<Indexed> {
        let put_row = Put::builder()
            .table_name(&self.tables.message_index)
            .set_item(Some(row.clone()))
            .condition_expression("attribute_not_exists(#owner_id)")
            .set_expression_attribute_names(names(&[attr::OWNER_ID]))
            .build()
            .map_err(|e| unbuildable("TransactWriteItems", e))?;
        let items = vec![
            TransactWriteItem::builder().put(put_row).build(),
            TransactWriteItem::builder()
                .update(self.session_update(job, w)?)
                .build(),
        ];
        let r = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        let outcome = committed(r)?;
        Ok(match outcome {
            Committed::Yes => Indexed::Applied,
            _ if outcome.failed_condition(0) => Indexed::Already,
            _ if outcome.failed_condition(1) => Indexed::SessionChanged,
            _ if outcome.conflicted() => Indexed::Conflict,
            Committed::Cancelled(reasons) => {
                tracing::warn!(?reasons, "indexing transaction cancelled");
                return Err(retryable(
                    "TransactWriteItems",
                    "the indexing transaction was cancelled",
                ));
            }
        })
    }

    /// The recipient's session update of the indexing transaction.
    fn session_update(&self, job: &IndexJob, w: SessionWrite) -> Res<Update> {
        let mut sets = Vec::new();
        let mut values: Item = HashMap::new();
        let mut attrs = vec![attr::LAST_TS, attr::LAST_RECV_TS, attr::LAST_READ_TS];
        if w.set_last {
            sets.push("#last_message_id = :mid, #last_from = :from, #last_preview = :preview, #last_ts = :ts");
            attrs.extend([attr::LAST_MESSAGE_ID, attr::LAST_FROM, attr::LAST_PREVIEW]);
            values.insert(":mid".into(), s(job.message_id.to_string()));
            values.insert(":from".into(), s(job.from.as_str()));
            values.insert(":preview".into(), s(job.preview.as_str()));
        }
        if w.set_recv {
            sets.push("#last_recv_ts = :ts");
        }
        values.insert(":ts".into(), n(job.timestamp()));
        let mut update = if sets.is_empty() {
            String::new()
        } else {
            format!("SET {}", sets.join(", "))
        };
        if w.count_unread {
            update.push_str(" ADD #unread :one");
            attrs.push(attr::UNREAD);
            values.insert(":one".into(), n(1));
        }
        let condition = match w.expect {
            Expect::Newest => {
                "(attribute_not_exists(#last_ts) OR #last_ts < :ts) AND \
                 (attribute_not_exists(#last_read_ts) OR #last_read_ts < :ts)"
            }
            Expect::ReadBefore => "attribute_not_exists(#last_read_ts) OR #last_read_ts < :ts",
        };
        let exprs = [update.trim(), condition];
        Update::builder()
            .table_name(&self.tables.sessions)
            .set_key(Some(session_key(&job.to, &job.from)))
            .set_expression_attribute_names(names_in(&exprs, &attrs))
            .set_expression_attribute_values(values_in(&exprs, values))
            .update_expression(update.trim())
            .condition_expression(condition)
            .build()
            .map_err(|e| unbuildable("TransactWriteItems", e))
    }

    /// The sender's half of indexing: its history row and the preview of its session (no unread).
    async fn index_sender(&self, job: &IndexJob, row: Item) -> Res<()> {
        self.client
            .put_item()
            .table_name(&self.tables.message_index)
            .set_item(Some(row))
            .send()
            .await
            .map_err(failed("PutItem"))?;
        // Not applied: the session already shows a newer message.
        self.session_preview(&job.from, &job.to, job, false).await.map(drop)
    }

    /// Sets `owner`'s session with `peer` to show `job`'s message (and, with `received`, its `last_recv_ts`) if it
    /// is newer than the session's last message; whether it was.
    async fn session_preview(&self, owner: &UserId, peer: &UserId, job: &IndexJob, received: bool) -> Res<bool> {
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
        let r = self
            .client
            .update_item()
            .table_name(&self.tables.sessions)
            .set_key(Some(session_key(owner, peer)))
            .update_expression(update)
            .condition_expression("attribute_not_exists(#last_ts) OR #last_ts < :ts")
            .set_expression_attribute_names(names(&attrs))
            .expression_attribute_values(":mid", s(job.message_id.to_string()))
            .expression_attribute_values(":from", s(job.from.as_str()))
            .expression_attribute_values(":preview", s(job.preview.as_str()))
            .expression_attribute_values(":ts", n(job.timestamp()))
            .send()
            .await;
        applied("UpdateItem", r)
    }
}

/// The key of `owner`'s session with `peer`.
pub(super) fn session_key(owner: &UserId, peer: &UserId) -> Item {
    HashMap::from([
        (attr::USER_ID.to_owned(), s(owner.as_str())),
        (attr::PEER_ID.to_owned(), s(peer.as_str())),
    ])
}

fn index_row(owner: &UserId, peer: &UserId, direction: &str, job: &IndexJob, expires_at: Option<i64>) -> IndexItem {
    IndexItem {
        owner_id: owner.clone(),
        sk: format!("{peer}#{}", time_key(&job.message_id)),
        peer_id: peer.clone(),
        direction: direction.to_owned(),
        message_id: job.message_id,
        timestamp: job.timestamp(),
        expires_at,
    }
}
