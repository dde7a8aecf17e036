//! [`IndexStore`] on DynamoDB: each participant's MessageIndex row of a one-on-one message and their Sessions
//! (unread count, preview, marks), written by the index consumer; and `read`, which moves a read mark.
//!
//! Unread counting lives in the condition expressions below; the in-memory fake (`testing::memory`) keeps the
//! same rules, and the contract suite (tests/tests/contract) runs the same cases against both.

use super::{
    DynamoStore, Item,
    expr::*,
    items::{IndexItem, attr, time_key},
    outcome::{Committed, applied, committed, failed, retryable, unbuildable},
};
use crate::{
    ids::UserId,
    jobs::IndexJob,
    ports::{IndexStore, Indexed, Res},
};
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
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

enum Transacted {
    Applied,
    /// The row exists: this message was indexed (and counted) before.
    Already,
    /// The session's condition failed (see [`Expect`]).
    SessionChanged,
    /// Another transaction held the session at that instant.
    Conflict,
}

impl IndexStore for DynamoStore {
    async fn index_direct(&self, job: &IndexJob, expires_at: Option<i64>) -> Res<Indexed> {
        let recipient_row = to_item("index row", &index_row(&job.to, &job.from, job, expires_at))?;
        let sender_row = to_item("index row", &index_row(&job.from, &job.to, job, expires_at))?;
        let (indexed, ()) = futures::try_join!(
            self.index_recipient(job, recipient_row),
            self.index_sender(job, sender_row)
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
    /// The recipient's half of indexing: its history row and its unread count, in one transaction so that unread
    /// counts each message exactly once (the row's `attribute_not_exists` condition is the idempotency guard);
    /// and the session's preview and marks, which only move forward.
    ///
    /// The fast path writes everything in one transaction when the message is the newest the session has seen.
    /// Otherwise (out of order, read ahead, or other messages of the conversation indexed at the same time) the
    /// count is written with a condition on the read mark alone, which commutes with every other writer, so
    /// retries converge instead of chasing a session that keeps changing; the preview and marks follow as
    /// conditional updates that never move back.
    async fn index_recipient(&self, job: &IndexJob, row: Item) -> Res<Indexed> {
        let fast = SessionWrite {
            set_last: true,
            set_recv: true,
            count_unread: true,
            expect: Expect::Newest,
        };
        match self.index_transaction(job, &row, fast).await? {
            Transacted::Applied => return Ok(Indexed::Done),
            // Indexed before, perhaps by the slow path, whose marks may not have been written: write them.
            Transacted::Already => return self.recipient_marks(job).await.map(|()| Indexed::Done),
            Transacted::SessionChanged | Transacted::Conflict => {}
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
                Transacted::Applied | Transacted::Already => {
                    return self.recipient_marks(job).await.map(|()| Indexed::Done);
                }
                // Read past this message already: index it without counting it; its read receipt is owed.
                Transacted::SessionChanged => {
                    self.put_row_once(&row).await?;
                    return self.recipient_marks(job).await.map(|()| Indexed::ReadAhead);
                }
                Transacted::Conflict => {}
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

    async fn index_transaction(&self, job: &IndexJob, row: &Item, w: SessionWrite) -> Res<Transacted> {
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
            Committed::Yes => Transacted::Applied,
            _ if outcome.failed_condition(0) => Transacted::Already,
            _ if outcome.failed_condition(1) => Transacted::SessionChanged,
            _ if outcome.conflicted() => Transacted::Conflict,
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
            attrs.extend([
                attr::LAST_MESSAGE_ID,
                attr::LAST_FROM,
                attr::LAST_PREVIEW,
                attr::LAST_EDITED_AT,
                attr::LAST_DELETED,
            ]);
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
        // A read mark that came first left a hidden row set to lapse; with a message it is a conversation. The
        // edit and delete marks belonged to the message this one replaces as the last.
        update.push_str(if w.set_last {
            " REMOVE #expires_at, #last_edited_at, #last_deleted"
        } else {
            " REMOVE #expires_at"
        });
        attrs.push(attr::EXPIRES_AT);
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
        // See `session_update`: the row is a conversation now and must not lapse, and the edit and delete marks
        // were the replaced message's.
        update.push_str(" REMOVE #expires_at, #last_edited_at, #last_deleted");
        attrs.extend([attr::EXPIRES_AT, attr::LAST_EDITED_AT, attr::LAST_DELETED]);
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

fn index_row(owner: &UserId, peer: &UserId, job: &IndexJob, expires_at: Option<i64>) -> IndexItem {
    IndexItem {
        owner_id: owner.clone(),
        sk: format!("{peer}#{}", time_key(&job.message_id)),
        expires_at,
    }
}
