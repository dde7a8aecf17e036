//! `sync`: everything a user missed, page by page.
//!
//! It merges two kinds of sources, oldest first: the user's mailbox (unacknowledged one-on-one messages, the
//! sparse Inbox index) and, for every group with messages after the member's ack mark, that group's history. The
//! cursor keeps one position per source, so acks arriving between pages shift nothing and every message comes
//! exactly once. Within a group the order is the server sequence. Every reply stays within API Gateway's 128 KB.

use super::App;
use crate::{
    error::Failure,
    frames::{Conversation, ConversationSummary, MessagePush, ServerFrame, SyncReply},
    ids::{GroupId, MessageId, UserId},
    model::StoredMessage,
    ports::{GroupStore, PullStore},
    seal::CursorKey,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Messages one sync page carries at most.
pub const SYNC_PAGE: usize = 100;
/// Conversations the first sync page lists at most: the most recently active.
pub const SYNC_CONVERSATIONS: usize = 200;
/// Bytes one reply carries at most, as serialized JSON: API Gateway never delivers a message over 128 KB, and the
/// reply's own fields (type, next, requestId) take a little of it.
pub const REPLY_BUDGET: usize = 124 * 1024;
/// Bytes the first page's conversation list may take; the rest of the budget is for messages.
pub const CONVERSATIONS_BUDGET: usize = 48 * 1024;
/// Groups a sync cursor may name (a user in more groups with unacknowledged messages syncs them over more rounds).
pub const SYNC_GROUPS: usize = 100;

/// Where a sync stands, for the next page: JSON, sealed for the user it was issued to ([`crate::seal`]), so a
/// client can neither make one up nor change one (a late member asking for the group's sequence 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SyncCursor {
    v: u8,
    /// The last mailbox message returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    inbox: Option<MessageId>,
    /// The mailbox held nothing more when this cursor was made.
    #[serde(default)]
    inbox_done: bool,
    /// Groups still to sync: (group, last sequence consumed, last sequence to sync).
    #[serde(default)]
    groups: Vec<(GroupId, u64, u64)>,
}

/// What a sync cursor is sealed for, besides its user.
const SYNC_SCOPE: &str = "sync";

impl SyncCursor {
    fn encode(&self, key: &CursorKey, user: &UserId) -> String {
        key.seal(user.as_str(), SYNC_SCOPE, &serde_json::to_vec(self).unwrap_or_default())
    }

    fn decode(s: &str, key: &CursorKey, user: &UserId) -> Result<Self, Failure> {
        key.open_position(user.as_str(), SYNC_SCOPE, "cursor", s, Self::parse)
    }

    /// The position a cursor's content names, if it is one this server could have made.
    fn parse(content: &[u8]) -> Option<Self> {
        let c: Self = serde_json::from_slice(content).ok()?;
        let valid = c.v == 1 && c.groups.len() <= SYNC_GROUPS && c.groups.iter().all(|(_, at, to)| at <= to);
        valid.then_some(c)
    }
}

/// Cursor decoding exactly as `sync` and `history` do it, for the fuzz targets (fuzz/) and tests. Whatever the
/// input: no panic, and a cursor that decodes encodes back to one that decodes to the same position.
pub mod cursors {
    use super::SyncCursor;
    use crate::{ids::MessageId, ids::UserId, seal::CursorKey};

    /// Whether `s` opens as a sync cursor (it never does unless sealed), and whether `s` as a cursor's content
    /// names a position this server could have made; one that does survives sealing and opening.
    pub fn sync(s: &str) -> bool {
        // A fixed key: a fresh random one per input would cost a system call per fuzz run.
        let key = CursorKey::from_secret("natter fuzz target cursor key, 32+ bytes").expect("a long enough key");
        let user = UserId::parse("fuzz").expect("a user id");
        assert!(
            SyncCursor::decode(s, &key, &user).is_err(),
            "nothing opens without the key's tag"
        );
        match SyncCursor::parse(s.as_bytes()) {
            Some(c) => {
                let again = SyncCursor::decode(&c.encode(&key, &user), &key, &user).expect("a sealed cursor opens");
                assert_eq!(again, c, "a cursor survives sealing");
                true
            }
            None => false,
        }
    }

    /// Whether `s` is the content of a `before` cursor of a one-on-one history (a message id) or of a group (a
    /// sequence).
    pub fn history(s: &str) -> (bool, bool) {
        (MessageId::parse(s).is_ok(), s.parse::<u64>().is_ok())
    }
}

/// Approximate size of a message in a reply: its body and its other fields.
/// The size of a value in a reply as serialized JSON (a comma included): what API Gateway counts. A body of
/// control characters is six times its raw size once escaped, so raw bytes would not do.
pub(super) fn json_size(v: &impl Serialize) -> usize {
    serde_json::to_string(v).map_or(0, |s| s.len()) + 1
}

pub(super) fn message_size(m: &MessagePush) -> usize {
    json_size(m)
}

/// One source of a sync page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Inbox,
    Group(usize),
}

/// What a first sync page saw, for its catch-up.
#[derive(Debug, Clone, Default)]
pub(super) struct SyncSeen {
    /// The mailbox was read to its end, up to this message (`Some(None)`: it was empty).
    pub inbox_to: Option<Option<MessageId>>,
    /// Each group's sequence when the sync started: the sync covers everything up to it.
    pub groups: Vec<(GroupId, u64)>,
}

struct Candidate {
    /// The merge key: time (non-decreasing within a source), then the source, then the place in the source, so
    /// that each source keeps its own order (the sequence within a group).
    key: (i64, usize, usize),
    id: MessageId,
    source: Source,
    seq: u64,
    /// `None`: the user's own group message, or one whose item expired: consumed without being returned.
    message: Option<StoredMessage>,
    /// A group message from someone else, whose body is still to fetch.
    needs_body: bool,
}

impl<S, P, Q> App<S, P, Q>
where
    S: GroupStore + PullStore,
{
    /// `sync` at `now`: messages past their retention are consumed without being returned.
    pub async fn sync(&self, user: &UserId, cursor: Option<&str>, now: i64) -> Result<ServerFrame, Failure> {
        Ok(self.sync_page(user, cursor, now).await?.0)
    }

    /// A sync page and what it saw: what the catch-up after a first page need not push again.
    pub(super) async fn sync_page(
        &self,
        user: &UserId,
        cursor: Option<&str>,
        now: i64,
    ) -> Result<(ServerFrame, SyncSeen), Failure> {
        let mut seen = SyncSeen::default();
        let (mut cur, conversations) = match cursor {
            None => {
                let (sessions, groups) = futures::try_join!(
                    self.store.sessions(user, SYNC_CONVERSATIONS),
                    self.store.groups_of(user)
                )?;
                let mut conversations: Vec<ConversationSummary> = sessions
                    .into_iter()
                    .filter_map(|s| {
                        Some(ConversationSummary {
                            conversation: Conversation::With(s.peer?),
                            unread: s.unread,
                            last: s.last,
                        })
                    })
                    .collect();
                let mut pending = Vec::new();
                for (g, m) in &groups {
                    conversations.push(ConversationSummary {
                        conversation: Conversation::Group(g.id.clone()),
                        unread: g.unread_for(m),
                        // A member sees no preview of what was said before it joined.
                        last: g.last.clone().filter(|_| g.last_seq > m.joined_seq),
                    });
                    if g.last_seq > m.last_ack_seq {
                        pending.push((g.id.clone(), m.last_ack_seq, g.last_seq));
                    }
                    seen.groups.push((g.id.clone(), g.last_seq));
                }
                conversations.sort_by_key(|c| std::cmp::Reverse(c.last.as_ref().map(|l| l.timestamp).unwrap_or(0)));
                conversations.truncate(SYNC_CONVERSATIONS);
                // The newest first, as many as fit their share of the reply.
                let mut used = 0;
                conversations.retain(|c| {
                    used += json_size(c);
                    used <= CONVERSATIONS_BUDGET
                });
                pending.truncate(SYNC_GROUPS);
                (
                    SyncCursor {
                        v: 1,
                        inbox: None,
                        inbox_done: false,
                        groups: pending,
                    },
                    Some(conversations),
                )
            }
            Some(text) => {
                let mut c = SyncCursor::decode(text, &self.settings.cursor_key, user)?;
                // A cursor names groups: read only those the caller still belongs to, and each from where it
                // joined at the earliest (a member removed and added again since the cursor was issued starts
                // over from its new join point).
                let ids: Vec<GroupId> = c.groups.iter().map(|(g, _, _)| g.clone()).collect();
                let members = if ids.is_empty() {
                    HashMap::new()
                } else {
                    self.store.memberships(user, &ids).await?
                };
                c.groups.retain_mut(|(g, at, to)| match members.get(g) {
                    Some(m) => {
                        *at = (*at).max(m.joined_seq).min(*to);
                        true
                    }
                    None => false,
                });
                (c, None)
            }
        };

        // The head of every source, concurrently.
        let inbox = async {
            if cur.inbox_done {
                Ok((Vec::new(), false))
            } else {
                self.store.inbox(user, cur.inbox.as_ref(), SYNC_PAGE).await
            }
        };
        let groups = futures::future::try_join_all(
            cur.groups
                .iter()
                .map(|(g, after, up_to)| self.store.group_entries(g, *after, *up_to, SYNC_PAGE)),
        );
        let ((inbox, inbox_more), entries) = futures::try_join!(inbox, groups)?;

        let mut candidates: Vec<Candidate> = inbox
            .into_iter()
            .enumerate()
            .map(|(k, m)| Candidate {
                key: (m.timestamp(), 0, k),
                id: m.id,
                source: Source::Inbox,
                seq: 0,
                message: (!m.expired(now)).then_some(m),
                needs_body: false,
            })
            .collect();
        for (i, list) in entries.iter().enumerate() {
            // Within a group the order is the sequence; the merge time never goes backwards along it.
            let mut time = 0;
            for (k, e) in list.iter().enumerate() {
                time = time.max(e.message_id.timestamp());
                candidates.push(Candidate {
                    key: (time, i + 1, k),
                    id: e.message_id,
                    source: Source::Group(i),
                    seq: e.seq,
                    message: None,
                    needs_body: e.sender != *user,
                });
            }
        }
        candidates.sort_by_key(|c| c.key);
        // Only the bodies this page can return: the merge is decided on the index rows, so a member of 100 busy
        // groups fetches at most a page of bodies, not a page per group.
        let mut counted = 0;
        let cut = candidates
            .iter()
            .position(|c| {
                counted += usize::from(c.message.is_some() || c.needs_body);
                counted > SYNC_PAGE
            })
            .unwrap_or(candidates.len());
        candidates.truncate(cut);
        let wanted: Vec<MessageId> = candidates.iter().filter(|c| c.needs_body).map(|c| c.id).collect();
        if !wanted.is_empty() {
            let mut bodies = self.store.messages(&wanted).await?;
            for c in candidates.iter_mut().filter(|c| c.needs_body) {
                c.message = bodies.remove(&c.id).filter(|m| !m.expired(now));
            }
        }

        let fetched_inbox = candidates.iter().filter(|c| c.source == Source::Inbox).count();
        let conversations_bytes = conversations.as_ref().map_or(0, |c| c.iter().map(json_size).sum());
        let (mut taken_inbox, mut bytes) = (0, conversations_bytes);
        let mut messages = Vec::new();
        for c in candidates {
            if let Some(m) = &c.message {
                let mut push = m.to_push_for(user);
                // Signed before it is measured: the URLs count toward the page's size.
                self.link(std::slice::from_mut(&mut push), now).await?;
                // A page always moves on: by a message, or by its conversations (a message that does not fit
                // beside them comes first on the next page, alone if it must).
                let moved_on = !messages.is_empty() || conversations_bytes > 0;
                if messages.len() == SYNC_PAGE || (bytes + message_size(&push) > REPLY_BUDGET && moved_on) {
                    break;
                }
                bytes += message_size(&push);
                messages.push(push);
            }
            match c.source {
                Source::Inbox => {
                    cur.inbox = Some(c.id);
                    taken_inbox += 1;
                }
                Source::Group(i) => cur.groups[i].1 = c.seq,
            }
        }
        // Groups whose history ran out before their end mark (expired messages) are done too.
        for (i, list) in entries.iter().enumerate() {
            if list.len() < SYNC_PAGE && list.last().is_none_or(|e| e.seq <= cur.groups[i].1) {
                cur.groups[i].1 = cur.groups[i].2;
            }
        }
        cur.inbox_done = !inbox_more && taken_inbox == fetched_inbox;
        cur.groups.retain(|(_, at, to)| at < to);
        let next = (!cur.inbox_done || !cur.groups.is_empty()).then(|| cur.encode(&self.settings.cursor_key, user));
        if cur.inbox_done {
            seen.inbox_to = Some(cur.inbox);
        }
        let page = ServerFrame::Sync(SyncReply {
            conversations,
            messages,
            next,
        });
        Ok((page, seen))
    }
}
