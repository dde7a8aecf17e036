//! [`PullStore`] in memory: the reads behind `sync` and `history`.

use super::MemoryStore;
use crate::{
    frames::{LastMessage, Target},
    ids::{GroupId, MessageId, UserId},
    model::{ConversationPage, GroupEntry, Member, StoredMessage},
    ports::{PullStore, Res},
};
use std::collections::{HashMap, HashSet};

impl PullStore for MemoryStore {
    async fn sessions(&self, user: &UserId, limit: usize) -> Res<Vec<crate::model::Session>> {
        let s = self.state.lock().unwrap();
        let mut out: Vec<crate::model::Session> = s
            .sessions
            .iter()
            // A row with no message yet is a hidden read mark, not a conversation.
            .filter(|((u, _), x)| u == user && x.last.is_some())
            .map(|((_, peer), x)| crate::model::Session {
                peer: Some(peer.clone()),
                unread: x.unread,
                last: x.last.as_ref().map(|(id, from, preview)| LastMessage {
                    message_id: *id,
                    from: from.clone(),
                    preview: preview.clone(),
                    timestamp: id.timestamp(),
                    deleted: preview.is_none(),
                }),
                last_recv_ts: x.last_recv_ts,
                last_read_ts: x.last_read_ts,
            })
            .collect();
        out.sort_by_key(|x| std::cmp::Reverse(x.last.as_ref().map(|l| l.timestamp)));
        out.truncate(limit);
        Ok(out)
    }

    async fn session(&self, user: &UserId, peer: &UserId) -> Res<Option<crate::model::Session>> {
        Ok(self
            .sessions(user, usize::MAX)
            .await?
            .into_iter()
            .find(|x| x.peer.as_ref() == Some(peer))
            // As on DynamoDB: only `sessions` counts unread.
            .map(|x| crate::model::Session { unread: 0, ..x }))
    }

    async fn inbox(&self, user: &UserId, after: Option<&MessageId>, limit: usize) -> Res<(Vec<StoredMessage>, bool)> {
        self.faults.check("inbox")?;
        let s = self.state.lock().unwrap();
        let ids: Vec<MessageId> = s
            .inbox
            .get(user)
            .map(|b| {
                b.iter()
                    .filter(|id| after.is_none_or(|a| *id > a))
                    .take(limit + 1)
                    .copied()
                    .collect()
            })
            .unwrap_or_default();
        let more = ids.len() > limit;
        Ok((
            ids.iter()
                .take(limit)
                .filter_map(|id| s.messages.get(id).cloned())
                .collect(),
            more,
        ))
    }

    async fn undelivered(&self, recipient: &UserId, ids: &[MessageId]) -> Res<HashSet<MessageId>> {
        self.faults.check("undelivered")?;
        let s = self.state.lock().unwrap();
        let pending = s.inbox.get(recipient);
        Ok(ids
            .iter()
            .filter(|id| pending.is_some_and(|p| p.contains(id)))
            .copied()
            .collect())
    }

    async fn group_entries(&self, group: &GroupId, after: u64, up_to: u64, limit: usize) -> Res<Vec<GroupEntry>> {
        let s = self.state.lock().unwrap();
        if after >= up_to {
            return Ok(Vec::new());
        }
        Ok(s.group_history
            .range((group.clone(), after + 1)..=(group.clone(), up_to))
            .take(limit)
            .map(|(_, e)| e.clone())
            .collect())
    }

    async fn group_entries_before(
        &self,
        group: &GroupId,
        before: u64,
        floor: u64,
        limit: usize,
    ) -> Res<Vec<GroupEntry>> {
        let s = self.state.lock().unwrap();
        if before <= floor + 1 {
            return Ok(Vec::new());
        }
        Ok(s.group_history
            .range((group.clone(), floor + 1)..(group.clone(), before))
            .rev()
            .take(limit)
            .map(|(_, e)| e.clone())
            .collect())
    }

    async fn conversation(
        &self,
        owner: &UserId,
        peer: &UserId,
        before: Option<&MessageId>,
        limit: usize,
    ) -> Res<ConversationPage> {
        let s = self.state.lock().unwrap();
        let mut ids: Vec<MessageId> = s
            .index
            .iter()
            .filter(|(o, id)| {
                o == owner
                    && before.is_none_or(|b| id < b)
                    && s.messages.get(id).is_some_and(|m| {
                        let other = if m.from == *owner {
                            m.target.clone()
                        } else {
                            Target::To(m.from.clone())
                        };
                        other == Target::To(peer.clone())
                    })
            })
            .map(|(_, id)| *id)
            .collect();
        ids.sort_by(|a, b| b.cmp(a));
        let more = ids.len() > limit;
        ids.truncate(limit);
        Ok(ConversationPage { ids, more })
    }

    async fn messages(&self, ids: &[MessageId]) -> Res<HashMap<MessageId, StoredMessage>> {
        let s = self.state.lock().unwrap();
        Ok(ids
            .iter()
            .filter_map(|id| Some((*id, s.messages.get(id)?.clone())))
            .collect())
    }

    async fn memberships(&self, user: &UserId, groups: &[GroupId]) -> Res<HashMap<GroupId, Member>> {
        let s = self.state.lock().unwrap();
        Ok(groups
            .iter()
            .filter_map(|g| Some((g.clone(), s.members.get(g)?.get(user)?.clone())))
            .collect())
    }
}
