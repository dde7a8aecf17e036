//! `history`: one conversation, newest first, page by page. One-on-one pages come from the caller's own
//! MessageIndex rows (a stranger sees nothing of a conversation it is not in) with the status of the caller's own
//! messages; group pages from GroupHistory, for members only and from the sequence they joined at. Every page
//! stays within the reply budget. Its `next` is sealed for the user and the conversation ([`crate::seal`]).

use super::{
    App,
    sync::{REPLY_BUDGET, message_size},
};
use crate::{
    error::{BackendError, Failure, forbidden, not_found},
    frames::{Conversation, HistoryReply, MessagePush, MessageStatus, ServerFrame},
    ids::{MessageId, UserId},
    model::GroupEntry,
    ports::{Directory, GroupStore, PullStore},
    seal::text,
};

impl<S, P, Q> App<S, P, Q>
where
    S: Directory + GroupStore + PullStore,
{
    pub async fn history(
        &self,
        user: &UserId,
        conversation: &Conversation,
        before: Option<&str>,
        limit: usize,
        now: i64,
    ) -> Result<ServerFrame, Failure> {
        // A `before` is the position of a page's last message, sealed for this user and this conversation.
        let key = &self.settings.cursor_key;
        let scope = match conversation {
            Conversation::With(peer) => format!("history:with:{peer}"),
            Conversation::Group(group) => format!("history:group:{group}"),
        };
        let (messages, next) = match conversation {
            Conversation::With(peer) => {
                if !self.store.exists(peer).await? {
                    return Err(not_found(format!("no user `{peer}`")));
                }
                let before = match before {
                    Some(b) => Some(
                        key.open_position(user.as_str(), &scope, "before", b, |c| MessageId::parse(text(c)?).ok())?,
                    ),
                    None => None,
                };
                let page = self.store.conversation(user, peer, before.as_ref(), limit).await?;
                // The peer's read mark tells the status of the user's own messages, and for those it does not
                // cover, the peer's mailbox (one read per such message: at most a page, whatever the mailbox holds).
                let (bodies, peer_session) =
                    futures::try_join!(self.store.messages(&page.ids), self.store.session(peer, user))?;
                let read_up_to = peer_session.and_then(|s| s.last_read_ts);
                let unread_by_peer: Vec<MessageId> = bodies
                    .values()
                    .filter(|m| m.from == *user && read_up_to.is_none_or(|r| m.timestamp() > r))
                    .map(|m| m.id)
                    .collect();
                let undelivered = self.store.undelivered(peer, &unread_by_peer).await?;
                // Past its retention, a message is gone even while DynamoDB has not deleted it yet.
                let list = page
                    .ids
                    .iter()
                    .filter_map(|id| bodies.get(id))
                    .filter(|m| !m.expired(now))
                    .map(|m| {
                        let mut push = m.to_push_for(user);
                        if m.from == *user {
                            push.status = Some(if read_up_to.is_some_and(|r| m.timestamp() <= r) {
                                MessageStatus::Read
                            } else if !undelivered.contains(&m.id) {
                                MessageStatus::Delivered
                            } else {
                                MessageStatus::Sent
                            });
                        }
                        (push, m.id.to_string())
                    })
                    .collect();
                paginate(self.linked(list, now).await?, page.more)
            }
            Conversation::Group(group) => {
                let member = match self.store.membership(group, user).await? {
                    (None, _) => return Err(not_found(format!("no group `{group}`"))),
                    (Some(_), None) => return Err(forbidden("not a member of this group")),
                    (Some(_), Some(m)) => m,
                };
                let before = match before {
                    Some(b) => {
                        key.open_position(user.as_str(), &scope, "before", b, |c| text(c)?.parse::<u64>().ok())?
                    }
                    None => u64::MAX,
                };
                // A member reads the group from the day it joined.
                let entries: Vec<GroupEntry> = self
                    .store
                    .group_entries_before(group, before, member.joined_seq, limit + 1)
                    .await?;
                let more = entries.len() > limit;
                let ids: Vec<MessageId> = entries.iter().take(limit).map(|e| e.message_id).collect();
                let bodies = self.store.messages(&ids).await?;
                let list = entries.iter().take(limit).filter_map(|e| {
                    let mut push = bodies.get(&e.message_id).filter(|m| !m.expired(now))?.to_push_for(user);
                    if push.from == *user {
                        // Groups send no receipts: one's own group messages show as sent.
                        push.status = Some(MessageStatus::Sent);
                    }
                    Some((push, e.seq.to_string()))
                });
                paginate(self.linked(list.collect(), now).await?, more)
            }
        };
        let next = next.map(|position| key.seal(user.as_str(), &scope, position.as_bytes()));
        Ok(ServerFrame::History(HistoryReply { messages, next }))
    }
}

impl<S, P, Q> App<S, P, Q> {
    /// The list with its download URLs signed: before the page is cut, so that the URLs count toward its size.
    async fn linked(
        &self,
        mut list: Vec<(MessagePush, String)>,
        now: i64,
    ) -> Result<std::vec::IntoIter<(MessagePush, String)>, BackendError> {
        for (push, _) in list.iter_mut() {
            self.link(std::slice::from_mut(push), now).await?;
        }
        Ok(list.into_iter())
    }
}

/// Takes messages (newest first) while the reply has room; the cursor is the position of the last one taken.
fn paginate(list: impl Iterator<Item = (MessagePush, String)>, more: bool) -> (Vec<MessagePush>, Option<String>) {
    let (mut out, mut bytes, mut last, mut truncated) = (Vec::new(), 0, None, false);
    for (push, position) in list {
        if bytes + message_size(&push) > REPLY_BUDGET && !out.is_empty() {
            truncated = true;
            break;
        }
        bytes += message_size(&push);
        out.push(push);
        last = Some(position);
    }
    let next = if more || truncated { last } else { None };
    (out, next)
}
