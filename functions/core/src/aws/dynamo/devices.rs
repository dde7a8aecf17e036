//! [`DeviceStore`] on DynamoDB: the Devices table holds, under each user, one item per registered device
//! (`sk` = `t#{token}`) and one per conversation whose notifications are being coalesced (`sk` = `n#{peer}` or
//! `n#g#{group}`:
//! when the last went out, how many messages came since, whether a follow-up is queued).

use super::{
    DynamoStore,
    expr::*,
    outcome::{Written, applied, failed, written},
};
use crate::{
    ids::UserId,
    notify::{Device, DeviceToken, Platform, Topic},
    ports::{DeviceStore, NotifyState, Res},
};
use aws_sdk_dynamodb::types::{AttributeValue as Av, ReturnValue, ReturnValuesOnConditionCheckFailure};
use std::collections::HashMap;

const USER: &str = "user_id";
const SK: &str = "sk";

fn device_sk(token: &DeviceToken) -> String {
    format!("t#{}", token.as_str())
}

fn notify_key(user: &UserId, topic: &Topic) -> HashMap<String, Av> {
    HashMap::from([
        (USER.to_owned(), s(user.as_str())),
        (SK.to_owned(), s(format!("n#{}", topic.key()))),
    ])
}

fn device_of(item: &HashMap<String, Av>) -> Option<Device> {
    let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    Some(Device {
        token: DeviceToken::parse(&text("token")?).ok()?,
        platform: Platform::parse(&text("platform")?)?,
        endpoint: text("endpoint")?,
        created_at: number(item, "created_at").unwrap_or(0),
    })
}

fn state_of(item: &HashMap<String, Av>) -> NotifyState {
    NotifyState {
        last_at: number(item, "last_at"),
        pending: number(item, "pending").unwrap_or(0),
        scheduled: item
            .get("scheduled")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
    }
}

impl DeviceStore for DynamoStore {
    async fn devices(&self, user: &UserId) -> Res<Vec<Device>> {
        let query = self
            .client
            .query()
            .table_name(&self.tables.devices)
            .key_condition_expression("#user_id = :u AND begins_with(#sk, :t)")
            .set_expression_attribute_names(names(&[USER, SK]))
            .expression_attribute_values(":u", s(user.as_str()))
            .expression_attribute_values(":t", s("t#"))
            .consistent_read(true);
        Ok(self.query_all(query).await?.iter().filter_map(device_of).collect())
    }

    async fn put_device(&self, user: &UserId, d: &Device) -> Res<()> {
        self.client
            .put_item()
            .table_name(&self.tables.devices)
            .item(USER, s(user.as_str()))
            .item(SK, s(device_sk(&d.token)))
            .item("token", s(d.token.as_str()))
            .item("platform", s(d.platform.as_str()))
            .item("endpoint", s(&d.endpoint))
            .item("created_at", n(d.created_at))
            .send()
            .await
            .map_err(failed("PutItem"))
            .map(drop)
    }

    async fn remove_device(&self, user: &UserId, token: &DeviceToken) -> Res<Option<Device>> {
        let r = self
            .client
            .delete_item()
            .table_name(&self.tables.devices)
            .key(USER, s(user.as_str()))
            .key(SK, s(device_sk(token)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(failed("DeleteItem"))?;
        Ok(r.attributes.as_ref().and_then(device_of))
    }

    async fn note_message(&self, user: &UserId, topic: &Topic, messages: u64) -> Res<NotifyState> {
        let r = self
            .client
            .update_item()
            .table_name(&self.tables.devices)
            .set_key(Some(notify_key(user, topic)))
            .update_expression("ADD #pending :n")
            .set_expression_attribute_names(names(&["pending"]))
            .expression_attribute_values(":n", n(messages))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(failed("UpdateItem"))?;
        Ok(state_of(&r.attributes.unwrap_or_default()))
    }

    async fn take_pending(&self, user: &UserId, topic: &Topic, seen: Option<i64>, now: i64) -> Res<Option<u64>> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.tables.devices)
            .set_key(Some(notify_key(user, topic)))
            .update_expression("SET #last_at = :now, #pending = :zero, #scheduled = :false")
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":false", Av::Bool(false))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::None);
        req = match seen {
            Some(at) => req
                .condition_expression("#last_at = :seen")
                .expression_attribute_values(":seen", n(at)),
            None => req.condition_expression("attribute_not_exists(#last_at)"),
        };
        let r = req
            .set_expression_attribute_names(names(&["last_at", "pending", "scheduled"]))
            .send()
            .await;
        Ok(match written("UpdateItem", r)? {
            Written::Applied(out) => Some(state_of(&out.attributes.unwrap_or_default()).pending),
            // Another consumer notified in between.
            Written::Refused(_) => None,
        })
    }

    async fn schedule_follow_up(&self, user: &UserId, topic: &Topic) -> Res<bool> {
        let r = self
            .client
            .update_item()
            .table_name(&self.tables.devices)
            .set_key(Some(notify_key(user, topic)))
            .update_expression("SET #scheduled = :true")
            .condition_expression("attribute_not_exists(#scheduled) OR #scheduled = :false")
            .set_expression_attribute_names(names(&["scheduled"]))
            .expression_attribute_values(":true", Av::Bool(true))
            .expression_attribute_values(":false", Av::Bool(false))
            .send()
            .await;
        applied("UpdateItem", r)
    }
}
