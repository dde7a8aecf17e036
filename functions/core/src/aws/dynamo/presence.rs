//! [`PresenceStore`] on DynamoDB: the Connections registry and each user's Presence item, whose `conns` map holds
//! every connection with its expiry (a connection that vanished without `$disconnect` stops counting when its
//! expiry passes and is pruned on the next write).

use super::{
    DynamoStore, Read,
    expr::*,
    items::{ConnectionItem, PresenceItem, attr},
    outcome::{Written, applied, failed, retryable, written},
};
use crate::{
    frames::Status,
    ids::{ConnectionId, UserId},
    model::{NewConnection, Opened, Presence, Transition},
    ports::{PresenceStore, Res},
};
use aws_sdk_dynamodb::types::{AttributeValue as Av, ReturnValue, ReturnValuesOnConditionCheckFailure};
use std::collections::{HashMap, HashSet};
use tracing::warn;

impl PresenceStore for DynamoStore {
    async fn open(&self, c: &NewConnection, max_live: usize) -> Res<Opened> {
        let item = ConnectionItem {
            connection_id: c.id.clone(),
            user_id: c.user.clone(),
            connected_at: c.connected_at,
            expires_at: c.expires_at,
        };
        let put = async {
            self.client
                .put_item()
                .table_name(&self.tables.connections)
                .set_item(Some(to_item("connection", &item)?))
                .send()
                .await
                .map_err(failed("PutItem"))
        };
        // Both at once (the common case is admitted); a refused connection's registry item is deleted again.
        let (_, added) = futures::try_join!(put, self.add_presence(c, max_live))?;
        let before = match added {
            AddedPresence::Full => {
                let r = self
                    .client
                    .delete_item()
                    .table_name(&self.tables.connections)
                    .key(attr::CONNECTION_ID, s(c.id.as_str()))
                    .send()
                    .await;
                // Left behind, it is only a registry row that expires with its TTL and receives nothing.
                if let Err(e) = r {
                    warn!(error = %aws_sdk_dynamodb::error::DisplayErrorContext(e), "could not delete a refused connection");
                }
                return Ok(Opened::Full);
            }
            AddedPresence::First => return Ok(Opened::Open(Transition::CameOnline)),
            AddedPresence::Added(before) => before,
        };
        let now_s = c.connected_at / 1000;
        let was_online = before.conns.values().any(|exp| *exp > now_s);
        let stale: Vec<String> = before
            .conns
            .iter()
            .filter(|(id, exp)| **exp <= now_s && id.as_str() != c.id.as_str())
            .map(|(id, _)| id.clone())
            .collect();
        self.prune(&c.user, stale).await;
        Ok(Opened::Open(if was_online {
            Transition::Unchanged
        } else {
            Transition::CameOnline
        }))
    }

    async fn close(&self, user: &UserId, connection: &ConnectionId, now: i64) -> Res<Transition> {
        self.close_if(user, connection, now, None).await
    }

    async fn close_gone(&self, user: &UserId, connection: &ConnectionId, now: i64, max_expiry: i64) -> Res<Transition> {
        self.close_if(user, connection, now, Some(max_expiry)).await
    }

    async fn presence(&self, users: &[UserId]) -> Res<HashMap<UserId, Presence>> {
        self.presence_read(users, Read::Eventual).await
    }

    async fn presence_latest(&self, users: &[UserId]) -> Res<HashMap<UserId, Presence>> {
        self.presence_read(users, Read::Strong).await
    }

    async fn touch(&self, user: &UserId, now: i64) -> Res<()> {
        self.presence_set(user, "SET #last_seen = :v", &[attr::LAST_SEEN], n(now))
            .await
    }

    async fn set_announced(&self, user: &UserId, status: Status) -> Res<()> {
        let value = match status {
            Status::Online => "online",
            Status::Offline => "offline",
        };
        self.presence_set(
            user,
            "SET #announced = :v REMOVE #exposed",
            &[attr::ANNOUNCED, attr::EXPOSED],
            s(value),
        )
        .await
    }

    async fn mark_exposed(&self, user: &UserId) -> Res<()> {
        self.presence_set(user, "SET #exposed = :v", &[attr::EXPOSED], Av::Bool(true))
            .await
    }

    async fn mark_devices(&self, user: &UserId, devices: bool) -> Res<()> {
        let update = if devices {
            "SET #devices = :v"
        } else {
            // Only while unknown: a device registered since the caller looked must not be hidden.
            "SET #devices = if_not_exists(#devices, :v)"
        };
        self.presence_set(user, update, &[attr::DEVICES], Av::Bool(devices))
            .await
    }
}

impl DynamoStore {
    async fn presence_read(&self, users: &[UserId], read: Read) -> Res<HashMap<UserId, Presence>> {
        let unique: Vec<&UserId> = users.iter().collect::<HashSet<_>>().into_iter().collect();
        let keys = unique.iter().map(|u| user_key(u)).collect();
        let mut out = HashMap::new();
        for item in self.get_many(&self.tables.presence, keys, None, read).await? {
            let p: PresenceItem = from_item("presence", item)?;
            if let Ok(user) = UserId::parse(&p.user_id) {
                out.insert(user, p.into_presence());
            }
        }
        Ok(out)
    }

    /// Adds a connection to the user's presence; returns the item as it was before (`None`: the first ever).
    async fn add_presence(&self, c: &NewConnection, max_live: usize) -> Res<AddedPresence> {
        // The map may also hold connections that vanished without `$disconnect` (pruned below): its size can
        // refuse a connection the live count would admit, so a refusal is checked against the expiries.
        let max = if max_live == 0 { i64::MAX } else { max_live as i64 };
        for _ in 0..3 {
            let r = self
                .client
                .update_item()
                .table_name(&self.tables.presence)
                .set_key(Some(user_key(&c.user)))
                .update_expression("SET #conns.#c = :exp")
                .condition_expression(
                    "attribute_exists(#conns) AND (size(#conns) < :max OR attribute_exists(#conns.#c))",
                )
                .expression_attribute_names("#conns", attr::CONNS)
                .expression_attribute_names("#c", c.id.as_str())
                .expression_attribute_values(":exp", n(c.expires_at))
                .expression_attribute_values(":max", n(max))
                .return_values(ReturnValue::AllOld)
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .send()
                .await;
            match written("UpdateItem", r)? {
                Written::Applied(out) => {
                    return Ok(AddedPresence::Added(from_item(
                        "presence",
                        out.attributes.unwrap_or_default(),
                    )?));
                }
                Written::Refused(Some(item)) => {
                    let full: PresenceItem = from_item("presence", item)?;
                    let now_s = c.connected_at / 1000;
                    let (live, stale): (Vec<_>, Vec<_>) = full.conns.into_iter().partition(|(_, exp)| *exp > now_s);
                    if live.len() as i64 >= max {
                        return Ok(AddedPresence::Full);
                    }
                    // Room once the expired ones are gone (or the map changed meanwhile): try again.
                    self.prune(&c.user, stale.into_iter().map(|(id, _)| id).collect()).await;
                    continue;
                }
                Written::Refused(None) => {}
            }
            // First connection ever: create the item, unless a concurrent first connection just did.
            let item = PresenceItem {
                user_id: c.user.to_string(),
                conns: HashMap::from([(c.id.to_string(), c.expires_at)]),
                ..Default::default()
            };
            let r = self
                .client
                .put_item()
                .table_name(&self.tables.presence)
                .set_item(Some(to_item("presence", &item)?))
                .condition_expression("attribute_not_exists(#user_id)")
                .set_expression_attribute_names(names(&[attr::USER_ID]))
                .send()
                .await;
            if applied("PutItem", r)? {
                return Ok(AddedPresence::First);
            }
        }
        Err(retryable("UpdateItem", "presence item kept changing"))
    }

    /// Removes connections whose expiry passed (they vanished without `$disconnect`) from a presence item.
    async fn prune(&self, user: &UserId, stale: Vec<String>) {
        if stale.is_empty() {
            return;
        }
        let mut names = HashMap::from([("#conns".to_owned(), attr::CONNS.to_owned())]);
        let mut paths = Vec::new();
        for (i, c) in stale.into_iter().enumerate() {
            names.insert(format!("#s{i}"), c);
            paths.push(format!("#conns.#s{i}"));
        }
        let r = self
            .client
            .update_item()
            .table_name(&self.tables.presence)
            .set_key(Some(user_key(user)))
            .update_expression(format!("REMOVE {}", paths.join(", ")))
            .condition_expression("attribute_exists(#conns)")
            .set_expression_attribute_names(Some(names))
            .send()
            .await;
        if let Err(e) = applied("UpdateItem", r) {
            warn!(error = %e, %user, "could not prune expired connections");
        }
    }

    /// `$disconnect` (`max_expiry` None), or a push that found the connection gone (removed only if its expiry
    /// is below `max_expiry`, i.e. it connected before the grace period).
    async fn close_if(
        &self,
        user: &UserId,
        connection: &ConnectionId,
        now: i64,
        max_expiry: Option<i64>,
    ) -> Res<Transition> {
        let delete = || async {
            self.client
                .delete_item()
                .table_name(&self.tables.connections)
                .key(attr::CONNECTION_ID, s(connection.as_str()))
                .send()
                .await
                .map_err(failed("DeleteItem"))
        };
        let remove = async {
            let r = self
                .client
                .update_item()
                .table_name(&self.tables.presence)
                .set_key(Some(user_key(user)))
                .update_expression("REMOVE #conns.#c SET #last_seen = :now")
                .condition_expression(match max_expiry {
                    None => "attribute_exists(#conns)",
                    // A connection found gone is removed only if it is older than the grace period: a
                    // connection still in `$connect` answers 410 as well.
                    Some(_) => "#conns.#c < :max_expiry",
                })
                .set_expression_attribute_values(max_expiry.map(|m| HashMap::from([(":max_expiry".to_owned(), n(m))])))
                .expression_attribute_names("#conns", attr::CONNS)
                .expression_attribute_names("#c", connection.as_str())
                .expression_attribute_names("#last_seen", attr::LAST_SEEN)
                .expression_attribute_values(":now", n(now))
                .return_values(ReturnValue::AllOld)
                .send()
                .await;
            match written("UpdateItem", r)? {
                Written::Applied(out) => Ok(Some(from_item::<PresenceItem>(
                    "presence",
                    out.attributes.unwrap_or_default(),
                )?)),
                Written::Refused(_) => Ok(None),
            }
        };
        let before = match max_expiry {
            None => futures::try_join!(delete(), remove)?.1,
            // Only a connection that is really gone loses its registry item.
            Some(_) => {
                let before = remove.await?;
                if before.is_some() {
                    delete().await?;
                }
                before
            }
        };
        let Some(before) = before else {
            return Ok(Transition::Unchanged);
        };
        let now_s = now / 1000;
        let live_before: Vec<&String> = before
            .conns
            .iter()
            .filter(|(_, exp)| **exp > now_s)
            .map(|(id, _)| id)
            .collect();
        let live_after = live_before
            .iter()
            .filter(|id| id.as_str() != connection.as_str())
            .count();
        let stale: Vec<String> = before
            .conns
            .iter()
            .filter(|(id, exp)| **exp <= now_s && id.as_str() != connection.as_str())
            .map(|(id, _)| id.clone())
            .collect();
        self.prune(user, stale).await;
        Ok(if !live_before.is_empty() && live_after == 0 {
            Transition::WentOffline
        } else {
            Transition::Unchanged
        })
    }

    /// Sets one attribute of an existing presence item (a user that never connected has none: nothing to do).
    async fn presence_set(&self, user: &UserId, update: &str, attributes: &[&str], value: Av) -> Res<()> {
        let mut all = attributes.to_vec();
        all.push(attr::USER_ID);
        let r = self
            .client
            .update_item()
            .table_name(&self.tables.presence)
            .set_key(Some(user_key(user)))
            .update_expression(update)
            .condition_expression("attribute_exists(#user_id)")
            .set_expression_attribute_names(names(&all))
            .expression_attribute_values(":v", value)
            .send()
            .await;
        applied("UpdateItem", r).map(drop)
    }
}

/// What adding a connection to a user's presence did.
enum AddedPresence {
    /// The user's first connection ever: the item was created.
    First,
    /// Added; the item as it was before.
    Added(PresenceItem),
    /// The user holds the most live connections it may.
    Full,
}
