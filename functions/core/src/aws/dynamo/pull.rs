//! [`PullStore`] on DynamoDB: the reads behind `sync` and `history`: sessions, the mailbox (`mailbox.rs`),
//! GroupHistory ranges, MessageIndex pages of one conversation, message bodies and memberships.

use super::{
    DynamoStore, Read,
    expr::*,
    index::session_key,
    items::{GroupHistoryItem, MemberItem, MessageItem, SessionItem, attr, time_key},
    messages::message_key,
    outcome::failed,
};
use crate::{
    ids::{GroupId, MessageId, UserId},
    model::{ConversationPage, GroupEntry, Member, Session, StoredMessage},
    ports::{PullStore, Res},
};
use aws_sdk_dynamodb::types::Select;
use std::collections::{HashMap, HashSet};

impl PullStore for DynamoStore {
    async fn sessions(&self, user: &UserId, limit: usize) -> Res<Vec<Session>> {
        let q = self
            .client
            .query()
            .table_name(&self.tables.sessions)
            .key_condition_expression("#user_id = :u")
            // Strong: the unread counts show a `read` of a moment ago.
            .consistent_read(true)
            .set_expression_attribute_names(names(&[attr::USER_ID]))
            .expression_attribute_values(":u", s(user.as_str()));
        let mut sessions: Vec<Session> = self
            .query_all(q)
            .await?
            .into_iter()
            .map(|i| from_item::<SessionItem>("session", i).map(Session::from))
            .filter(is_conversation)
            .collect::<Res<_>>()?;
        sessions.sort_by_key(|s| std::cmp::Reverse(s.last.as_ref().map(|l| l.timestamp).unwrap_or(0)));
        sessions.truncate(limit);
        for chunk in sessions.chunks_mut(COUNT_CONCURRENCY) {
            let counted = futures::future::try_join_all(chunk.iter().map(|s| self.unread_after_mark(user, s))).await?;
            for (session, n) in chunk.iter_mut().zip(counted) {
                session.unread += n;
            }
        }
        Ok(sessions)
    }

    async fn session(&self, user: &UserId, peer: &UserId) -> Res<Option<Session>> {
        let r = self
            .client
            .get_item()
            .table_name(&self.tables.sessions)
            .set_key(Some(session_key(user, peer)))
            // Strong: history shows the read mark a `read` set a moment ago.
            .consistent_read(true)
            .send()
            .await
            .map_err(failed("GetItem"))?;
        r.item
            // Unread is counted by `sessions` only; none of this method's readers shows it.
            .map(|i| from_item::<SessionItem>("session", i).map(|s| Session { unread: 0, ..s.into() }))
            .filter(is_conversation)
            .transpose()
    }

    async fn inbox(&self, user: &UserId, after: Option<&MessageId>, limit: usize) -> Res<(Vec<StoredMessage>, bool)> {
        // The Mailbox rows and the old Inbox index's entries (messages stored before the Mailbox table) at once,
        // merged by id: both are ordered by id, so one cursor position serves both.
        let mut after = after.copied();
        loop {
            let (fresh, legacy) = futures::try_join!(
                self.mailbox_pending(user, after.as_ref(), limit),
                self.legacy_inbox(user, after.as_ref(), limit)
            )?;
            // A source with more has been read only up to its last id: nothing past the nearer of those ends may
            // be returned, or the next page (which starts after the last returned) would skip what lies between.
            let fresh_end = fresh.1.then(|| fresh.0.last().copied()).flatten();
            let legacy_end = legacy.1.then(|| legacy.0.last().map(|m| m.id)).flatten();
            let horizon = fresh_end.into_iter().chain(legacy_end).min();
            let bodies = self.messages(&fresh.0).await?;
            // A row whose message is not stored (yet, or ever: its send failed and was not retried) is skipped.
            let mut messages: Vec<StoredMessage> = fresh.0.iter().filter_map(|id| bodies.get(id).cloned()).collect();
            messages.extend(legacy.0);
            messages.sort_by_key(|m| m.id);
            messages.dedup_by_key(|m| m.id);
            messages.retain(|m| horizon.is_none_or(|h| m.id <= h));
            let more = horizon.is_some() || messages.len() > limit;
            if messages.is_empty() && more {
                // Only rows without a message up to the horizon: read on past them rather than answer an empty
                // page whose cursor would not move.
                after = horizon;
                continue;
            }
            messages.truncate(limit);
            return Ok((messages, more));
        }
    }

    async fn undelivered(&self, recipient: &UserId, ids: &[MessageId]) -> Res<HashSet<MessageId>> {
        self.mailbox_undelivered(recipient, ids).await
    }

    async fn group_entries(&self, group: &GroupId, after: u64, up_to: u64, limit: usize) -> Res<Vec<GroupEntry>> {
        if after >= up_to {
            return Ok(Vec::new());
        }
        self.group_range(group, after + 1, up_to, true, limit).await
    }

    async fn group_entries_before(
        &self,
        group: &GroupId,
        before: u64,
        floor: u64,
        limit: usize,
    ) -> Res<Vec<GroupEntry>> {
        if before <= floor.saturating_add(1) {
            return Ok(Vec::new());
        }
        self.group_range(group, floor + 1, before.min(i64::MAX as u64) - 1, false, limit)
            .await
    }

    async fn conversation(
        &self,
        owner: &UserId,
        peer: &UserId,
        before: Option<&MessageId>,
        limit: usize,
    ) -> Res<ConversationPage> {
        // Each message has one row, in its recipient's partition: the conversation is `owner`'s rows from `peer`
        // and `peer`'s rows from `owner`, merged. (Rows written before issue 19 are in both partitions; the
        // merge keeps each id once.)
        let (mine, theirs) = futures::try_join!(
            self.conversation_rows(owner, peer, before, limit),
            self.conversation_rows(peer, owner, before, limit)
        )?;
        let mut rows: Vec<(i64, MessageId)> = mine.0.into_iter().chain(theirs.0).collect();
        rows.sort_unstable_by(|a, b| b.cmp(a));
        rows.dedup();
        // A partition that filled its page may hold more; so may the merge beyond `limit`.
        let more = rows.len() > limit || mine.1 || theirs.1;
        let ids = rows.into_iter().map(|(_, id)| id).take(limit).collect();
        Ok(ConversationPage { ids, more })
    }

    async fn messages(&self, ids: &[MessageId]) -> Res<HashMap<MessageId, StoredMessage>> {
        let mut out = HashMap::new();
        for item in self.message_items(ids).await? {
            let m: StoredMessage = item.try_into()?;
            out.insert(m.id, m);
        }
        Ok(out)
    }

    async fn memberships(&self, user: &UserId, groups: &[GroupId]) -> Res<HashMap<GroupId, Member>> {
        let keys = groups.iter().map(|g| member_key(g, user)).collect();
        let mut out = HashMap::new();
        // Strong: a membership of an instant ago must not drop its group from a sync cursor.
        for item in self
            .get_many(&self.tables.group_members, keys, None, Read::Strong)
            .await?
        {
            let row: MemberItem = from_item("member", item)?;
            out.insert(row.group_id.clone(), row.into());
        }
        Ok(out)
    }
}

/// Count queries a sync page runs at once (one per conversation with news).
const COUNT_CONCURRENCY: usize = 8;

impl DynamoStore {
    /// The Messages items of `ids`, as stored.
    pub(super) async fn message_items(&self, ids: &[MessageId]) -> Res<Vec<MessageItem>> {
        // Strong: an id from an index or a history row can be newer than an eventual read of its message (which
        // would look expired), and a sender's history shows the delivered mark an ack set a moment ago.
        let unique: HashSet<&MessageId> = ids.iter().collect();
        let keys = unique.into_iter().map(message_key).collect();
        let items = self.get_many(&self.tables.messages, keys, None, Read::Strong).await?;
        items.into_iter().map(|i| from_item("message", i)).collect()
    }

    /// `owner`'s MessageIndex rows with `peer`, newest first, before `before`: up to `limit` (time, id) pairs and
    /// whether the partition may hold more.
    async fn conversation_rows(
        &self,
        owner: &UserId,
        peer: &UserId,
        before: Option<&MessageId>,
        limit: usize,
    ) -> Res<(Vec<(i64, MessageId)>, bool)> {
        // `{peer}#` prefixes the conversation's rows; '#' sorts below every id character, so no other peer's rows
        // fall in the range. BETWEEN is inclusive: the `before` row itself is dropped below.
        let low = format!("{peer}#");
        let high = match before {
            Some(id) => format!("{peer}#{}", time_key(id)),
            None => format!("{peer}#~"),
        };
        let r = self
            .client
            .query()
            .table_name(&self.tables.message_index)
            .key_condition_expression("#owner_id = :o AND #sk BETWEEN :lo AND :hi")
            // Strong: a conversation shows the message its unread count already counts.
            .consistent_read(true)
            .set_expression_attribute_names(names(&[attr::OWNER_ID, attr::SK]))
            .expression_attribute_values(":o", s(owner.as_str()))
            .expression_attribute_values(":lo", s(low))
            .expression_attribute_values(":hi", s(high))
            .scan_index_forward(false)
            // One more than a page, and the `before` row itself.
            .limit(limit as i32 + 2)
            .send()
            .await
            .map_err(failed("Query"))?;
        let mut rows: Vec<(i64, MessageId)> = r
            .items
            .unwrap_or_default()
            .iter()
            .filter_map(|i| i.get(attr::SK).and_then(|v| v.as_s().ok()))
            .filter_map(|sk| sk.rsplit_once('#').and_then(|(_, id)| MessageId::parse(id).ok()))
            .filter(|id| Some(id) != before)
            .map(|id| (id.timestamp(), id))
            .collect();
        let full = rows.len() > limit;
        rows.truncate(limit);
        Ok((rows, full))
    }

    /// The messages `owner` received in `session` after its read mark: a count of the received MessageIndex rows
    /// past the mark, read only when something arrived since the mark (`last_recv_ts`). Counting at read time
    /// costs a read unit per 4 KB of rows (about 40 messages) at a sync, where counting at indexing cost a
    /// transaction (four write units) per message.
    async fn unread_after_mark(&self, owner: &UserId, session: &Session) -> Res<u64> {
        let (Some(peer), Some(received)) = (&session.peer, session.last_recv_ts) else {
            return Ok(0);
        };
        if session.last_read_ts.is_some_and(|read| read >= received) {
            return Ok(0);
        }
        // Rows are `{peer}#{timestamp:013}#{id}`: the first key past the mark is the next millisecond's.
        let low = match session.last_read_ts {
            Some(read) => format!("{peer}#{:013}", read + 1),
            None => format!("{peer}#"),
        };
        let q = self
            .client
            .query()
            .table_name(&self.tables.message_index)
            .key_condition_expression("#owner_id = :o AND #sk BETWEEN :lo AND :hi")
            .filter_expression("attribute_exists(#in)")
            .select(Select::Count)
            // Strong: the count covers the message whose preview the session already shows.
            .consistent_read(true)
            .set_expression_attribute_names(names(&[attr::OWNER_ID, attr::SK, attr::RECEIVED]))
            .expression_attribute_values(":o", s(owner.as_str()))
            .expression_attribute_values(":lo", s(low))
            .expression_attribute_values(":hi", s(format!("{peer}#~")));
        self.count_all(q).await
    }

    /// GroupHistory rows of `group` with `lo <= seq <= hi`, ascending or descending, at most `limit`.
    async fn group_range(
        &self,
        group: &GroupId,
        lo: u64,
        hi: u64,
        ascending: bool,
        limit: usize,
    ) -> Res<Vec<GroupEntry>> {
        let r = self
            .client
            .query()
            .table_name(&self.tables.group_history)
            .key_condition_expression("#group_id = :g AND #seq BETWEEN :lo AND :hi")
            .set_expression_attribute_names(names(&[attr::GROUP_ID, attr::SEQ]))
            .expression_attribute_values(":g", s(group.as_str()))
            .expression_attribute_values(":lo", n(lo))
            .expression_attribute_values(":hi", n(hi))
            .scan_index_forward(ascending)
            // Strong: a sync that sees fewer rows than the group's sequence promises would take the missing ones
            // for expired and skip them.
            .consistent_read(true)
            .limit(limit as i32)
            .send()
            .await
            .map_err(failed("Query"))?;
        r.items
            .unwrap_or_default()
            .into_iter()
            .map(|i| from_item::<GroupHistoryItem>("group history row", i).map(GroupEntry::from))
            .collect()
    }
}

/// A row with no message yet is only a read mark waiting for one (see `read.rs`), not a conversation.
fn is_conversation(s: &Res<Session>) -> bool {
    s.as_ref().map_or(true, |s| s.last.is_some())
}
