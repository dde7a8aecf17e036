//! [`ChangeStore`] in memory: the same conditions as `aws/dynamo/changes.rs`.

use super::MemoryStore;
use crate::{
    frames::{Emoji, Target},
    ids::{Body, MessageId, UserId},
    model::StoredMessage,
    ports::{ChangeStore, Res},
};

impl ChangeStore for MemoryStore {
    async fn edit_message(&self, id: &MessageId, body: &Body, at: i64) -> Res<Option<StoredMessage>> {
        self.faults.check("edit_message")?;
        let mut s = self.state.lock().unwrap();
        let Some(m) = s.messages.get_mut(id) else {
            return Ok(None);
        };
        if m.body.is_some() && m.edited_at.is_none_or(|e| e < at) {
            m.body = Some(body.clone());
            m.edited_at = Some(at);
        }
        Ok(Some(m.clone()))
    }

    async fn delete_message(&self, id: &MessageId) -> Res<Option<StoredMessage>> {
        self.faults.check("delete_message")?;
        let mut s = self.state.lock().unwrap();
        let Some(m) = s.messages.get_mut(id) else {
            return Ok(None);
        };
        m.body = None;
        m.edited_at = None;
        m.reactions.clear();
        m.attachments.clear();
        Ok(Some(m.clone()))
    }

    async fn react(
        &self,
        id: &MessageId,
        user: &UserId,
        emoji: Option<&Emoji>,
        max: usize,
        _seen_none: bool,
    ) -> Res<Option<StoredMessage>> {
        self.faults.check("react")?;
        let mut s = self.state.lock().unwrap();
        let Some(m) = s.messages.get_mut(id) else {
            return Ok(None);
        };
        match emoji {
            None => {
                m.reactions.remove(user);
            }
            Some(e) if m.body.is_some() && (m.reactions.contains_key(user) || m.reactions.len() < max) => {
                m.reactions.insert(user.clone(), e.clone());
            }
            Some(_) => {}
        }
        Ok(Some(m.clone()))
    }

    async fn follow_previews(&self, message: &StoredMessage) -> Res<()> {
        self.faults.check("follow_previews")?;
        let mut s = self.state.lock().unwrap();
        let id = message.id;
        let shown = s.preview_edits.get(&id).copied();
        let deleted_before = |preview: &Option<String>| preview.is_none();
        let new_preview = match (&message.body, message.edited_at) {
            (None, _) => None,
            (Some(b), Some(at)) if shown.is_none_or(|e| e < at) => Some(b.preview()),
            _ => return Ok(()),
        };
        if let Some(at) = message.edited_at {
            s.preview_edits.insert(id, at);
        }
        match &message.target {
            Target::To(to) => {
                for key in [(message.from.clone(), to.clone()), (to.clone(), message.from.clone())] {
                    if let Some(session) = s.sessions.get_mut(&key)
                        && let Some((mid, _, preview)) = &mut session.last
                        && *mid == id
                        && !(new_preview.is_some() && deleted_before(preview))
                    {
                        *preview = new_preview.clone();
                    }
                }
            }
            Target::Group(group) => {
                if let Some(last) = s.groups.get_mut(group).and_then(|g| g.last.as_mut())
                    && last.message_id == id
                    && !(new_preview.is_some() && last.deleted)
                {
                    last.preview = new_preview.clone();
                    last.deleted = new_preview.is_none();
                }
            }
        }
        Ok(())
    }
}
