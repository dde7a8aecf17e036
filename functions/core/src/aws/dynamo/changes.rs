//! [`ChangeStore`] on DynamoDB: edits, deletes and reactions are conditional updates of the Messages item (one
//! write each, returning the item as it is now), and the previews follow with conditional updates of the Sessions
//! rows or the Groups item that name the message as their last.

use super::{
    DynamoStore, Item,
    expr::*,
    index::session_key,
    items::{MessageItem, attr},
    messages::message_key,
    outcome::{Written, applied, written},
};
use crate::{
    frames::{Emoji, Target},
    ids::{Body, MessageId, UserId},
    model::StoredMessage,
    ports::{ChangeStore, MessageStore, Res},
};
use aws_sdk_dynamodb::types::{AttributeValue as Av, ReturnValue, ReturnValuesOnConditionCheckFailure};
use std::collections::HashMap;

/// Rounds of "the map of reactions is absent, create it" racing another first reaction.
const REACT_RACES: usize = 3;

impl ChangeStore for DynamoStore {
    async fn edit_message(&self, id: &MessageId, body: &Body, at: i64) -> Res<Option<StoredMessage>> {
        let values = HashMap::from([(":body".to_owned(), s(body.as_str())), (":at".to_owned(), n(at))]);
        self.change(
            id,
            "SET #body = :body, #edited_at = :at",
            // Not deleted, and no later edit: two edits that race end with the later one.
            "attribute_exists(#body) AND (attribute_not_exists(#edited_at) OR #edited_at < :at)",
            names(&[attr::BODY, attr::EDITED_AT]),
            values,
        )
        .await
    }

    async fn delete_message(&self, id: &MessageId) -> Res<Option<StoredMessage>> {
        self.change(
            id,
            "REMOVE #body, #edited_at, #reactions, #attachments",
            "attribute_exists(#message_id)",
            names(&[
                attr::BODY,
                attr::EDITED_AT,
                attr::REACTIONS,
                attr::ATTACHMENTS,
                attr::MESSAGE_ID,
            ]),
            HashMap::new(),
        )
        .await
    }

    async fn react(
        &self,
        id: &MessageId,
        user: &UserId,
        emoji: Option<&Emoji>,
        max: usize,
        seen_none: bool,
    ) -> Res<Option<StoredMessage>> {
        // The reader's entry in the map is named through a placeholder: user ids may hold any character.
        let reader = |list: &[&str]| {
            let mut named = names(list).unwrap_or_default();
            named.insert("#reader".into(), user.as_str().to_owned());
            Some(named)
        };
        let Some(emoji) = emoji else {
            return self
                .change(
                    id,
                    "REMOVE #reactions.#reader",
                    "attribute_exists(#reactions.#reader)",
                    reader(&[attr::REACTIONS]),
                    HashMap::new(),
                )
                .await;
        };
        let first = HashMap::from([(
            ":map".to_owned(),
            Av::M(HashMap::from([(user.as_str().to_owned(), s(emoji.as_str()))])),
        )]);
        // A nested SET needs the map to exist; the first reaction creates it. Start with the write the caller's
        // read suggests (a refused condition is billed like a write), and switch when it was refused.
        let mut create = seen_none;
        for _ in 0..REACT_RACES {
            let written = if create {
                self.update(
                    id,
                    "SET #reactions = :map",
                    "attribute_exists(#body) AND attribute_not_exists(#reactions)",
                    names(&[attr::REACTIONS, attr::BODY]),
                    first.clone(),
                )
                .await?
            } else {
                let values = HashMap::from([(":e".to_owned(), s(emoji.as_str())), (":max".to_owned(), n(max))]);
                self.update(
                    id,
                    "SET #reactions.#reader = :e",
                    "attribute_exists(#body) AND attribute_exists(#reactions) AND \
                     (attribute_exists(#reactions.#reader) OR size(#reactions) < :max)",
                    reader(&[attr::REACTIONS, attr::BODY]),
                    values,
                )
                .await?
            };
            let now = match written {
                Written::Applied(item) => return to_message(item),
                Written::Refused(Some(item)) => to_message(item)?,
                Written::Refused(None) => self.get_message(id).await?,
            };
            // Gone or deleted: nothing to try. Full: the caller sees it.
            let Some(now) = now else { return Ok(None) };
            if now.deleted() || (!create && !now.reactions.is_empty()) {
                return Ok(Some(now));
            }
            // The map was there after all (another reader's first reaction), or not yet: the other write.
            create = now.reactions.is_empty();
        }
        self.get_message(id).await
    }

    async fn follow_previews(&self, message: &StoredMessage) -> Res<()> {
        let mut values = HashMap::from([(":mid".to_owned(), s(message.id.to_string()))]);
        let (update, condition) = match (&message.body, message.edited_at) {
            (None, _) => {
                values.insert(":true".into(), Av::Bool(true));
                (
                    "SET #last_deleted = :true REMOVE #last_preview, #last_edited_at",
                    "#last_message_id = :mid",
                )
            }
            (Some(body), Some(at)) => {
                values.insert(":preview".into(), s(body.preview()));
                values.insert(":at".into(), n(at));
                (
                    "SET #last_preview = :preview, #last_edited_at = :at",
                    "#last_message_id = :mid AND attribute_not_exists(#last_deleted) AND \
                     (attribute_not_exists(#last_edited_at) OR #last_edited_at < :at)",
                )
            }
            (Some(_), None) => return Ok(()),
        };
        let attrs = names_in(
            &[update, condition],
            &[
                attr::LAST_DELETED,
                attr::LAST_PREVIEW,
                attr::LAST_EDITED_AT,
                attr::LAST_MESSAGE_ID,
            ],
        );
        let preview = |table: &str, key: Item| {
            self.client
                .update_item()
                .table_name(table)
                .set_key(Some(key))
                .update_expression(update)
                .condition_expression(condition)
                .set_expression_attribute_names(attrs.clone())
                .set_expression_attribute_values(Some(values.clone()))
                .send()
        };
        // A refused condition: that preview shows another message, or a later edit.
        match &message.target {
            Target::To(to) => {
                let from = &message.from;
                let (a, b) = futures::join!(
                    preview(&self.tables.sessions, session_key(from, to)),
                    preview(&self.tables.sessions, session_key(to, from))
                );
                applied("UpdateItem", a)?;
                applied("UpdateItem", b)?;
            }
            Target::Group(group) => {
                applied("UpdateItem", preview(&self.tables.groups, group_key(group)).await)?;
            }
        }
        Ok(())
    }
}

impl DynamoStore {
    /// A conditional update of a message; the message as it is after it (whether or not it applied).
    async fn change(
        &self,
        id: &MessageId,
        update: &str,
        condition: &str,
        attr_names: Option<HashMap<String, String>>,
        values: Item,
    ) -> Res<Option<StoredMessage>> {
        match self.update(id, update, condition, attr_names, values).await? {
            Written::Applied(item) | Written::Refused(Some(item)) => to_message(item),
            // Refused with nothing returned: no such message, or an emulator that does not return the item.
            Written::Refused(None) => self.get_message(id).await,
        }
    }

    async fn update(
        &self,
        id: &MessageId,
        update: &str,
        condition: &str,
        attr_names: Option<HashMap<String, String>>,
        values: Item,
    ) -> Res<Written<Item>> {
        let r = self
            .client
            .update_item()
            .table_name(&self.tables.messages)
            .set_key(Some(message_key(id)))
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_names(attr_names)
            .set_expression_attribute_values((!values.is_empty()).then_some(values))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        Ok(match written("UpdateItem", r)? {
            Written::Applied(out) => Written::Applied(out.attributes.unwrap_or_default()),
            Written::Refused(old) => Written::Refused(old),
        })
    }
}

fn to_message(item: Item) -> Res<Option<StoredMessage>> {
    if item.is_empty() {
        return Ok(None);
    }
    let m: MessageItem = from_item("message", item)?;
    m.try_into().map(Some)
}
