//! `edit`, `delete` and `react`: changes to a message after it was sent.
//!
//! Each reads the message strongly, checks who may change it (only its readers: the two parties of a one-on-one
//! message, the members of its group who joined before it; edits and deletes only by the sender, within their
//! windows), writes the change as one conditional update of the message (so two changes that race end in one
//! state), makes the previews follow, and pushes the change to everyone who got the message: at once for a
//! one-on-one message, through the fan-out queue for a group. Repeating a frame repeats the push and writes
//! nothing new, so a retry after `unavailable` is safe.

use super::{App, Caller, delivery::connections_of};
use crate::{
    error::{Failure, forbidden, not_found},
    frames::{DeleteFrame, DeletePush, EditFrame, EditPush, ReactFrame, ReactionPush, ServerFrame, Target},
    ids::{ConnectionId, MessageId, UserId},
    jobs::{FanoutJob, Job},
    model::StoredMessage,
    ports::{ChangeStore, GroupStore, JobQueue, MessageStore, PresenceStore, Pusher},
};
use tracing::info;

impl<S, P, Q> App<S, P, Q>
where
    S: MessageStore + ChangeStore + GroupStore + PresenceStore,
    P: Pusher,
    Q: JobQueue,
{
    pub async fn edit(&self, caller: &Caller, frame: &EditFrame, now: i64) -> Result<(), Failure> {
        let m = self.readable(&caller.user, &frame.message_id, now).await?;
        self.senders_own(&caller.user, &m, self.settings.edit_window_secs, now, "edited")?;
        let m = if m.body.as_ref() == Some(&frame.body) {
            // The body it has already: a retry of this edit (pushed again below), or no change at all.
            if m.edited_at.is_none() {
                return Ok(());
            }
            m
        } else {
            self.store
                .edit_message(&m.id, &frame.body, now)
                .await?
                .ok_or_else(gone)?
        };
        // A delete that won the race, or a later edit: what is pushed is the message as it is now.
        let (Some(body), Some(edited_at)) = (m.body.clone(), m.edited_at) else {
            return Err(forbidden("the message was deleted"));
        };
        self.store.follow_previews(&m).await?;
        let push = ServerFrame::Edit(EditPush {
            message_id: m.id,
            body,
            edited_at,
        });
        self.announce(&m, push, Some(&caller.connection), now).await
    }

    pub async fn delete(&self, caller: &Caller, frame: &DeleteFrame, now: i64) -> Result<(), Failure> {
        let m = self.readable(&caller.user, &frame.message_id, now).await?;
        if m.from != caller.user {
            return Err(forbidden("only the sender may delete a message for everyone"));
        }
        // Deleted before: a retry, answered and pushed again. Otherwise only within the window.
        let m = if m.deleted() {
            m
        } else {
            self.senders_own(&caller.user, &m, self.settings.delete_window_secs, now, "deleted")?;
            // The bytes go first: once the item forgets its attachments, nothing would name them (a failure
            // here is `unavailable`, and the retry deletes them again, harmlessly).
            futures::future::try_join_all(
                m.attachments
                    .iter()
                    .map(|a| self.objects.delete(crate::attachments::object_key(&m.from, &a.id))),
            )
            .await?;
            self.store.delete_message(&m.id).await?.ok_or_else(gone)?
        };
        self.store.follow_previews(&m).await?;
        info!(message_id = %m.id, "deleted for everyone");
        let push = ServerFrame::Delete(DeletePush { message_id: m.id });
        self.announce(&m, push, Some(&caller.connection), now).await
    }

    pub async fn react(&self, caller: &Caller, frame: &ReactFrame, now: i64) -> Result<(), Failure> {
        let m = self.readable(&caller.user, &frame.message_id, now).await?;
        if m.deleted() {
            return Err(forbidden("the message was deleted"));
        }
        let wanted = frame.emoji.as_ref();
        let m = if m.reactions.get(&caller.user) == wanted {
            m
        } else {
            self.store
                .react(
                    &m.id,
                    &caller.user,
                    wanted,
                    self.settings.max_reactions,
                    m.reactions.is_empty(),
                )
                .await?
                .ok_or_else(gone)?
        };
        if m.reactions.get(&caller.user) != wanted {
            return Err(if m.deleted() {
                forbidden("the message was deleted")
            } else {
                forbidden(format!(
                    "the message has reactions from {} readers, the most it may have",
                    self.settings.max_reactions
                ))
            });
        }
        let push = ServerFrame::Reaction(ReactionPush {
            message_id: m.id,
            by: caller.user.clone(),
            emoji: wanted.map(|e| e.as_str().to_owned()).unwrap_or_default(),
        });
        // Every connection of every reader, the reactor's own included: each shows the counts the same way.
        self.announce(&m, push, None, now).await
    }

    /// The message, if `user` may read it; `not_found` otherwise, so nobody learns what exists beyond what it
    /// may read.
    async fn readable(&self, user: &UserId, id: &MessageId, now: i64) -> Result<StoredMessage, Failure> {
        let m = self
            .store
            .get_message(id)
            .await?
            .filter(|m| !m.expired(now))
            .ok_or_else(gone)?;
        let member = match &m.target {
            Target::To(_) => None,
            Target::Group(group) => self.store.membership(group, user).await?.1,
        };
        if m.readable_by(user, member.as_ref()) {
            Ok(m)
        } else {
            Err(gone())
        }
    }

    /// Refuses a change of `m` by anyone but its sender, or after `window_secs`.
    fn senders_own(
        &self,
        user: &UserId,
        m: &StoredMessage,
        window_secs: i64,
        now: i64,
        what: &str,
    ) -> Result<(), Failure> {
        if &m.from != user {
            return Err(forbidden(format!("only the sender may have a message {what}")));
        }
        if m.deleted() {
            return Err(forbidden("the message was deleted"));
        }
        if now - m.timestamp() > window_secs * 1000 {
            return Err(forbidden(format!(
                "a message may be {what} for {window_secs} seconds after it was sent"
            )));
        }
        Ok(())
    }

    /// Pushes a change of `m` to the connections of everyone who got it but `except`: the two parties of a
    /// one-on-one message at once, a group's members through the fan-out (a big group is pushed in chunks).
    async fn announce(
        &self,
        m: &StoredMessage,
        change: ServerFrame,
        except: Option<&ConnectionId>,
        now: i64,
    ) -> Result<(), Failure> {
        match &m.target {
            Target::To(to) => {
                let parties = [m.from.clone(), to.clone()];
                let presence = self.store.presence(&parties).await?;
                let targets = connections_of(&presence, &[&parties[0], &parties[1]], except, now);
                // Best effort, like every push: history and sync show the change to a device that missed it.
                self.deliver(&targets, &change.to_json(), now).await;
            }
            Target::Group(_) => {
                let job = Job::Fanout(FanoutJob {
                    message: Box::new(m.to_push()),
                    exclude: except.cloned(),
                    members: None,
                    change: Some(Box::new(change)),
                });
                self.queue.enqueue(&job).await?;
            }
        }
        Ok(())
    }
}

fn gone() -> Failure {
    not_found("no such message")
}
