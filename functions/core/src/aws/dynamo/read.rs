//! `read` of a one-on-one conversation on DynamoDB: the reader's read mark in its Sessions row, moved only
//! forward, and the receipt it owes the peer.
//!
//! A read receipt names only a message the reader received from that peer: the row's `last_recv_ts` (written
//! by the index consumer) is what the reader is known to have received. A client may show a message before the
//! consumer indexed it (the message is pushed at once, indexed a moment later), so a read may name a time past
//! `last_recv_ts`, or arrive before the conversation has a row at all. The mark then moves ahead of indexing: a
//! sync does not count the message (unread is the received rows past the mark), and the consumer, finding it
//! already read, sends the receipt itself (`Indexed::ReadAhead`). A read also removes the `unread` attribute
//! that indexing counted before issue 19. Where there is no conversation yet, the mark lives in a hidden row (no message, so
//! neither `sync` nor `history` lists it) that lapses through the table's TTL unless a message from the peer
//! is indexed first, which makes it a conversation. A read of a name the reader never hears from thus reaches
//! no one and shows nowhere.

use super::{
    DynamoStore,
    expr::*,
    index::session_key,
    items::attr,
    outcome::{Written, written},
};
use crate::{ids::UserId, ports::Res};
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};

/// Attempts at moving a mark while the index consumer turns a hidden row into a conversation under it.
const RACES: usize = 3;

impl DynamoStore {
    /// `read` with `upTo`: the mark moves to `t` (never back); the receipt goes up to the newest received message
    /// at or before `t` that was not read before.
    pub(super) async fn read_up_to(
        &self,
        reader: &UserId,
        peer: &UserId,
        t: i64,
        pending_expires_at: i64,
    ) -> Res<Option<i64>> {
        for _ in 0..RACES {
            // A conversation (a row with a message): move its mark.
            let r = self
                .client
                .update_item()
                .table_name(&self.tables.sessions)
                .set_key(Some(session_key(reader, peer)))
                .update_expression("SET #last_read_ts = :t REMOVE #unread")
                .condition_expression(
                    "attribute_exists(#last_ts) AND (attribute_not_exists(#last_read_ts) OR #last_read_ts < :t)",
                )
                .set_expression_attribute_names(names(&[attr::UNREAD, attr::LAST_READ_TS, attr::LAST_TS]))
                .expression_attribute_values(":t", n(t))
                .return_values(ReturnValue::AllOld)
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .send()
                .await;
            match written("UpdateItem", r)? {
                Written::Applied(out) => return Ok(newly_read(out.attributes, Some(t))),
                // Read that far already.
                Written::Refused(Some(old)) if old.contains_key(attr::LAST_TS) => return Ok(None),
                // No conversation yet: below.
                Written::Refused(_) => {}
            }
            if self.pending_mark(reader, peer, t, pending_expires_at).await? {
                return Ok(None);
            }
            // The consumer made it a conversation in between: move its mark above.
        }
        Ok(None)
    }

    /// The hidden mark of a conversation that has no message yet; false if it has one now (or the mark is there).
    async fn pending_mark(&self, reader: &UserId, peer: &UserId, t: i64, expires_at: i64) -> Res<bool> {
        let r = self
            .client
            .update_item()
            .table_name(&self.tables.sessions)
            .set_key(Some(session_key(reader, peer)))
            .update_expression("SET #last_read_ts = :t, #expires_at = :exp")
            .condition_expression(
                "attribute_not_exists(#last_ts) AND (attribute_not_exists(#last_read_ts) OR #last_read_ts < :t)",
            )
            .set_expression_attribute_names(names(&[attr::LAST_READ_TS, attr::EXPIRES_AT, attr::LAST_TS]))
            .expression_attribute_values(":t", n(t))
            .expression_attribute_values(":exp", n(expires_at))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        Ok(match written("UpdateItem", r)? {
            Written::Applied(_) => true,
            Written::Refused(old) => !old.is_some_and(|o| o.contains_key(attr::LAST_TS)),
        })
    }

    /// `read` without `upTo`: up to the newest message received, if there is one.
    pub(super) async fn read_all_received(&self, reader: &UserId, peer: &UserId) -> Res<Option<i64>> {
        let r = self
            .client
            .update_item()
            .table_name(&self.tables.sessions)
            .set_key(Some(session_key(reader, peer)))
            .update_expression("SET #last_read_ts = #last_recv_ts REMOVE #unread")
            // Nothing received from the peer yet: nothing to read; and a mark a read moved ahead of indexing
            // must not move back (a sync would count again what that read covered).
            .condition_expression(
                "attribute_exists(#last_recv_ts) AND (attribute_not_exists(#last_read_ts) OR #last_read_ts < #last_recv_ts)",
            )
            .set_expression_attribute_names(names(&[attr::UNREAD, attr::LAST_READ_TS, attr::LAST_RECV_TS]))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match written("UpdateItem", r)? {
            Written::Applied(out) => Ok(newly_read(out.attributes, None)),
            Written::Refused(_) => Ok(None),
        }
    }
}

/// The receipt a read owes, from the session as it was before the read: the newest received message up to the
/// new mark (`up_to`, or everything received), if it was not read before.
fn newly_read(old: Option<super::Item>, up_to: Option<i64>) -> Option<i64> {
    let old = old.unwrap_or_default();
    let received: Option<i64> = number(&old, attr::LAST_RECV_TS);
    let read: Option<i64> = number(&old, attr::LAST_READ_TS);
    let receipt = received.map(|r| up_to.map_or(r, |t| r.min(t)));
    receipt.filter(|r| read.is_none_or(|d| d < *r))
}
