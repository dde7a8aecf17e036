//! The DynamoDB store: every table access of natter. Key, update and condition expressions are written here by
//! hand; items go through serde_dynamo.

use super::{
    call_error,
    items::{
        ClaimItem, ConnectionItem, GroupHistoryItem, GroupItem, IndexItem, MemberItem, MessageItem, PresenceItem,
        SessionItem, time_key,
    },
};
use crate::{
    aws::attr,
    config::{Settings, Tables},
    error::BackendError,
    frames::{LastMessage, Status},
    ids::{ConnectionId, GroupId, MessageId, UserId},
    jobs::HistoryJob,
    model::{
        Added, Claim, ClaimKey, ConversationPage, Group, GroupEntry, Mark, Marked, Member, NewConnection, Presence,
        Session, StoredMessage, Transition,
    },
    ports::{
        Directory, FrameCounter, FriendStore, GroupStore, IndexStore, MessageStore, PresenceStore, PullStore, Res,
    },
};
use aws_sdk_dynamodb::{
    Client,
    operation::{put_item::PutItemError, transact_write_items::TransactWriteItemsError, update_item::UpdateItemError},
    types::{
        AttributeValue as Av, KeysAndAttributes, Put, ReturnValue, ReturnValuesOnConditionCheckFailure,
        TransactWriteItem, Update,
    },
};
use aws_smithy_runtime_api::client::{orchestrator::HttpResponse, result::SdkError};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use futures::{StreamExt, stream};
use serde::{Serialize, de::DeserializeOwned};
use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};
use tracing::warn;

type Item = HashMap<String, Av>;

/// The most keys one BatchGetItem call takes.
const BATCH_GET_MAX: usize = 100;
/// Concurrent single-item writes an ack issues.
const ACK_CONCURRENCY: usize = 16;

fn s(v: impl Into<String>) -> Av {
    Av::S(v.into())
}

fn n(v: impl ToString) -> Av {
    Av::N(v.to_string())
}

/// `Ok(true)` if a conditional write applied, `Ok(false)` if its condition failed, the call's error otherwise.
fn applied<T, E>(operation: &'static str, r: Result<T, SdkError<E, HttpResponse>>) -> Res<bool>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match r {
        Ok(_) => Ok(true),
        Err(SdkError::ServiceError(se)) if se.err().code() == Some("ConditionalCheckFailedException") => Ok(false),
        Err(e) => Err(call_error("DynamoDB", operation, e)),
    }
}

fn to_item<T: Serialize>(what: &'static str, v: &T) -> Res<Item> {
    serde_dynamo::to_item(v).map_err(|e| BackendError::corrupt(what, e))
}

fn from_item<T: DeserializeOwned>(what: &'static str, item: Item) -> Res<T> {
    serde_dynamo::from_item(item).map_err(|e| BackendError::corrupt(what, e))
}

/// Builds `#name` placeholders for attribute names: every name goes through one, so reserved words
/// (`timestamp`, `status`, ...) never matter.
fn names(list: &[&str]) -> Option<HashMap<String, String>> {
    Some(list.iter().map(|a| (format!("#{a}"), (*a).to_owned())).collect())
}

/// Whether `expr` uses the placeholder `token` (`#name` or `:value`) as a whole token.
fn uses(expr: &str, token: &str) -> bool {
    expr.match_indices(token)
        .any(|(i, _)| !expr[i + token.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_'))
}

/// `#name` placeholders for the attributes that the expressions use (DynamoDB refuses unused ones).
fn names_in(exprs: &[&str], attrs: &[&str]) -> Option<HashMap<String, String>> {
    Some(
        attrs
            .iter()
            .filter(|a| exprs.iter().any(|e| uses(e, &format!("#{a}"))))
            .map(|a| (format!("#{a}"), (*a).to_owned()))
            .collect(),
    )
}

/// Drops the `:values` the expressions do not use.
fn values_in(exprs: &[&str], mut values: Item) -> Option<Item> {
    values.retain(|k, _| exprs.iter().any(|e| uses(e, k)));
    Some(values)
}

/// Up to `max` milliseconds of jitter, from the clock's sub-millisecond noise (no random-number crate needed).
fn rand_ms(max: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    u64::from(nanos) % max.max(1)
}

fn build_err(what: &'static str, e: impl std::error::Error + Send + Sync + 'static) -> BackendError {
    BackendError::Call {
        service: "DynamoDB",
        operation: what,
        retryable: false,
        source: Box::new(e),
    }
}

/// The DynamoDB implementation of the stores.
#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    tables: Arc<Tables>,
    settings: Settings,
}

impl DynamoStore {
    pub fn new(client: Client, tables: Tables, settings: Settings) -> Self {
        Self {
            client,
            tables: Arc::new(tables),
            settings,
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn tables(&self) -> &Tables {
        &self.tables
    }

    /// BatchGetItem over any tables, retrying unprocessed keys with backoff; returns the items per table.
    async fn batch_get(&self, mut request: HashMap<String, KeysAndAttributes>) -> Res<HashMap<String, Vec<Item>>> {
        let mut out: HashMap<String, Vec<Item>> = HashMap::new();
        let mut backoff = Duration::from_millis(25);
        for attempt in 0..6 {
            if request.values().all(|k| k.keys().is_empty()) {
                return Ok(out);
            }
            if attempt > 0 {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
            let r = self
                .client
                .batch_get_item()
                .set_request_items(Some(request))
                .send()
                .await
                .map_err(|e| call_error("DynamoDB", "BatchGetItem", e))?;
            for (table, items) in r.responses.unwrap_or_default() {
                out.entry(table).or_default().extend(items);
            }
            request = r.unprocessed_keys.unwrap_or_default();
        }
        Err(BackendError::Call {
            service: "DynamoDB",
            operation: "BatchGetItem",
            retryable: true,
            source: "keys still unprocessed after retries (throttled)".into(),
        })
    }

    fn user_keys(users: &[&UserId]) -> Vec<Item> {
        users
            .iter()
            .map(|u| HashMap::from([(attr::USER_ID.to_owned(), s(u.as_str()))]))
            .collect()
    }

    /// Presence items of `users` (deduplicated), in chunks of 100 keys.
    async fn presence_items(&self, users: &[UserId]) -> Res<HashMap<UserId, Presence>> {
        let unique: Vec<&UserId> = users.iter().collect::<HashSet<_>>().into_iter().collect();
        let mut out = HashMap::new();
        for chunk in unique.chunks(BATCH_GET_MAX) {
            let keys = KeysAndAttributes::builder()
                .set_keys(Some(Self::user_keys(chunk)))
                .build()
                .map_err(|e| build_err("BatchGetItem", e))?;
            let mut got = self
                .batch_get(HashMap::from([(self.tables.presence.clone(), keys)]))
                .await?;
            for item in got.remove(&self.tables.presence).unwrap_or_default() {
                let p: PresenceItem = from_item("presence", item)?;
                if let Ok(user) = UserId::parse(&p.user_id) {
                    out.insert(user, p.into_presence());
                }
            }
        }
        Ok(out)
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
            .key(attr::USER_ID, s(user.as_str()))
            .update_expression(format!("REMOVE {}", paths.join(", ")))
            .condition_expression("attribute_exists(#conns)")
            .set_expression_attribute_names(Some(names))
            .send()
            .await;
        if let Err(e) = r {
            warn!(error = %call_error("DynamoDB", "UpdateItem", e), %user, "could not prune expired connections");
        }
    }

    /// Adds a connection to the user's presence; returns the item as it was before.
    async fn add_presence(&self, c: &NewConnection) -> Res<Option<PresenceItem>> {
        for _ in 0..3 {
            let r = self
                .client
                .update_item()
                .table_name(&self.tables.presence)
                .key(attr::USER_ID, s(c.user.as_str()))
                .update_expression("SET #conns.#c = :exp")
                .condition_expression("attribute_exists(#conns)")
                .expression_attribute_names("#conns", attr::CONNS)
                .expression_attribute_names("#c", c.id.as_str())
                .expression_attribute_values(":exp", n(c.expires_at))
                .return_values(ReturnValue::AllOld)
                .send()
                .await;
            match r {
                Ok(out) => return Ok(Some(from_item("presence", out.attributes.unwrap_or_default())?)),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|x| x.is_conditional_check_failed_exception()) => {}
                Err(e) => return Err(call_error("DynamoDB", "UpdateItem", e)),
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
            match r {
                Ok(_) => return Ok(None),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|x| x.is_conditional_check_failed_exception()) => {}
                Err(e) => return Err(call_error("DynamoDB", "PutItem", e)),
            }
        }
        Err(BackendError::Call {
            service: "DynamoDB",
            operation: "UpdateItem",
            retryable: true,
            source: "presence item kept changing".into(),
        })
    }

    async fn claim_update(&self, key: &ClaimKey, update: &str, condition: Option<&str>, values: Item) -> Res<bool> {
        let r = self
            .client
            .update_item()
            .table_name(&self.tables.send_claims)
            .key(attr::CLAIM, s(key.as_str()))
            .update_expression(update)
            .set_condition_expression(condition.map(str::to_owned))
            .set_expression_attribute_names(names_in(
                &[update, condition.unwrap_or_default()],
                &[attr::LEASE_UNTIL, attr::DONE, attr::SEQ],
            ))
            .set_expression_attribute_values(values_in(&[update, condition.unwrap_or_default()], values))
            .send()
            .await;
        applied("UpdateItem", r)
    }

    async fn read_message(&self, id: &MessageId) -> Res<Option<StoredMessage>> {
        let r = self
            .client
            .get_item()
            .table_name(&self.tables.messages)
            .key(attr::MESSAGE_ID, s(id.to_string()))
            .key(attr::TIMESTAMP, n(id.timestamp()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| call_error("DynamoDB", "GetItem", e))?;
        r.item
            .map(|i| from_item::<MessageItem>("message", i).and_then(StoredMessage::try_from))
            .transpose()
    }

    async fn ack_one(&self, acker: &UserId, id: &MessageId, now: i64) -> Res<Option<StoredMessage>> {
        let r = self
            .client
            .update_item()
            .table_name(&self.tables.messages)
            .key(attr::MESSAGE_ID, s(id.to_string()))
            .key(attr::TIMESTAMP, n(id.timestamp()))
            .update_expression("SET #delivered_at = if_not_exists(#delivered_at, :now) REMOVE #inbox")
            .condition_expression("#recipient = :acker")
            .set_expression_attribute_names(names(&[attr::DELIVERED_AT, attr::INBOX, attr::RECIPIENT]))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":acker", s(acker.as_str()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match r {
            Ok(out) => {
                let item: MessageItem = from_item("message", out.attributes.unwrap_or_default())?;
                Ok(Some(item.try_into()?))
            }
            // Not addressed to the acker, or no such message: nothing to acknowledge.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|x| x.is_conditional_check_failed_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(call_error("DynamoDB", "UpdateItem", e)),
        }
    }

    /// The recipient's half of indexing: its history row and its unread count, in one transaction so that unread
    /// counts each message exactly once (the row's `attribute_not_exists` condition is the idempotency guard);
    /// and the session's preview and marks, which only move forward.
    ///
    /// The fast path writes everything in one transaction when the message is the newest the session has seen.
    /// Otherwise (out of order, read ahead, or other messages of the conversation indexed at the same time) the
    /// count is written with a condition on the read mark alone, which commutes with every other writer, so
    /// retries converge instead of chasing a session that keeps changing; the preview and marks follow as
    /// conditional updates that never move back.
    async fn index_recipient(&self, job: &HistoryJob, row: Item) -> Res<()> {
        let fast = SessionWrite {
            set_last: true,
            set_recv: true,
            count_unread: true,
            expect: Expect::Newest,
        };
        match self.index_transaction(job, &row, fast).await? {
            TxOutcome::Applied => return Ok(()),
            // Indexed before, perhaps by the slow path, whose marks may not have been written: write them.
            TxOutcome::AlreadyIndexed => return self.recipient_marks(job).await,
            TxOutcome::SessionChanged | TxOutcome::Conflict => {}
        }
        let count = SessionWrite {
            set_last: false,
            set_recv: false,
            count_unread: true,
            expect: Expect::ReadBefore,
        };
        let mut backoff_ms = 10;
        for attempt in 0..10 {
            if attempt > 0 {
                // Another transaction held the session at that instant: back off with jitter and write the same.
                tokio::time::sleep(Duration::from_millis(backoff_ms + rand_ms(backoff_ms))).await;
                backoff_ms = (backoff_ms * 2).min(400);
            }
            match self.index_transaction(job, &row, count).await? {
                TxOutcome::Applied | TxOutcome::AlreadyIndexed => return self.recipient_marks(job).await,
                // Read past this message already: index it without counting it.
                TxOutcome::SessionChanged => {
                    self.put_row_once(&row).await?;
                    return self.recipient_marks(job).await;
                }
                TxOutcome::Conflict => {}
            }
        }
        Err(BackendError::Call {
            service: "DynamoDB",
            operation: "TransactWriteItems",
            retryable: true,
            source: "the session stayed locked by other transactions".into(),
        })
    }

    /// Moves the recipient's session forward to this message: its preview if it is the newest message either
    /// way, and `last_recv_ts` if it is the newest received. Each is conditional, so it never moves back, and
    /// repeating it changes nothing.
    async fn recipient_marks(&self, job: &HistoryJob) -> Res<()> {
        let ts = job.timestamp();
        // last_recv_ts <= last_ts always, so a message newer than last_ts is the newest received too.
        if self.session_preview(&job.to, &job.from, job, true).await? {
            return Ok(());
        }
        let received = self
            .client
            .update_item()
            .table_name(&self.tables.sessions)
            .key(attr::USER_ID, s(job.to.as_str()))
            .key(attr::PEER_ID, s(job.from.as_str()))
            .update_expression("SET #last_recv_ts = :ts")
            .condition_expression("attribute_not_exists(#last_recv_ts) OR #last_recv_ts < :ts")
            .set_expression_attribute_names(names(&[attr::LAST_RECV_TS]))
            .expression_attribute_values(":ts", n(ts))
            .send()
            .await;
        applied("UpdateItem", received).map(|_| ())
    }

    /// Writes an index row unless it exists.
    async fn put_row_once(&self, row: &Item) -> Res<()> {
        let r = self
            .client
            .put_item()
            .table_name(&self.tables.message_index)
            .set_item(Some(row.clone()))
            .condition_expression("attribute_not_exists(#owner_id)")
            .set_expression_attribute_names(names(&[attr::OWNER_ID]))
            .send()
            .await;
        applied("PutItem", r).map(|_| ())
    }

    async fn index_transaction(&self, job: &HistoryJob, row: &Item, w: SessionWrite) -> Res<TxOutcome> {
        let ts = job.timestamp();
        let put_row = Put::builder()
            .table_name(&self.tables.message_index)
            .set_item(Some(row.clone()))
            .condition_expression("attribute_not_exists(#owner_id)")
            .set_expression_attribute_names(names(&[attr::OWNER_ID]))
            .build()
            .map_err(|e| build_err("TransactWriteItems", e))?;
        let mut items = vec![TransactWriteItem::builder().put(put_row).build()];
        if w.set_last || w.set_recv || w.count_unread {
            let mut sets = Vec::new();
            let mut values: Item = HashMap::new();
            let mut attrs = vec![attr::LAST_TS, attr::LAST_RECV_TS, attr::LAST_READ_TS];
            if w.set_last {
                sets.push("#last_message_id = :mid, #last_from = :from, #last_preview = :preview, #last_ts = :ts");
                attrs.extend([attr::LAST_MESSAGE_ID, attr::LAST_FROM, attr::LAST_PREVIEW]);
                values.insert(":mid".into(), s(job.message_id.to_string()));
                values.insert(":from".into(), s(job.from.as_str()));
                values.insert(":preview".into(), s(job.preview.as_str()));
            }
            if w.set_recv {
                sets.push("#last_recv_ts = :ts");
            }
            values.insert(":ts".into(), n(ts));
            let mut expr = if sets.is_empty() {
                String::new()
            } else {
                format!("SET {}", sets.join(", "))
            };
            if w.count_unread {
                expr.push_str(" ADD #unread :one");
                attrs.push(attr::UNREAD);
                values.insert(":one".into(), n(1));
            }
            let condition = match w.expect {
                Expect::Newest => "(attribute_not_exists(#last_ts) OR #last_ts < :ts) AND \
                     (attribute_not_exists(#last_read_ts) OR #last_read_ts < :ts)"
                    .to_owned(),
                Expect::ReadBefore => "attribute_not_exists(#last_read_ts) OR #last_read_ts < :ts".to_owned(),
            };
            let exprs = [expr.trim(), condition.as_str()];
            let update = Update::builder()
                .table_name(&self.tables.sessions)
                .key(attr::USER_ID, s(job.to.as_str()))
                .key(attr::PEER_ID, s(job.from.as_str()))
                .set_expression_attribute_names(names_in(&exprs, &attrs))
                .set_expression_attribute_values(values_in(&exprs, values))
                .update_expression(expr.trim())
                .condition_expression(condition.as_str())
                .build()
                .map_err(|e| build_err("TransactWriteItems", e))?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        let r = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match r {
            Ok(_) => Ok(TxOutcome::Applied),
            Err(e) => {
                let reasons: Vec<Option<String>> = match e.as_service_error() {
                    Some(TransactWriteItemsError::TransactionCanceledException(tc)) => tc
                        .cancellation_reasons()
                        .iter()
                        .map(|r| r.code().map(str::to_owned))
                        .collect(),
                    _ => Vec::new(),
                };
                let code = |i: usize| reasons.get(i).cloned().flatten();
                if code(0).as_deref() == Some("ConditionalCheckFailed") {
                    Ok(TxOutcome::AlreadyIndexed)
                } else if code(1).as_deref() == Some("ConditionalCheckFailed") {
                    Ok(TxOutcome::SessionChanged)
                } else if reasons.iter().flatten().any(|c| c == "TransactionConflict")
                    || matches!(
                        e.as_service_error(),
                        Some(TransactWriteItemsError::TransactionInProgressException(_))
                    )
                {
                    Ok(TxOutcome::Conflict)
                } else {
                    Err(call_error("DynamoDB", "TransactWriteItems", e))
                }
            }
        }
    }

    /// The sender's half of indexing: its history row and the preview of its session (no unread).
    async fn index_sender(&self, job: &HistoryJob, row: Item) -> Res<()> {
        self.client
            .put_item()
            .table_name(&self.tables.message_index)
            .set_item(Some(row))
            .send()
            .await
            .map_err(|e| call_error("DynamoDB", "PutItem", e))?;
        // Not applied: the session already shows a newer message.
        self.session_preview(&job.from, &job.to, job, false).await.map(|_| ())
    }

    /// Sets `owner`'s session with `peer` to show `job`'s message (and, with `received`, its `last_recv_ts`) if it
    /// is newer than the session's last message; whether it was.
    async fn session_preview(&self, owner: &UserId, peer: &UserId, job: &HistoryJob, received: bool) -> Res<bool> {
        let mut update =
            "SET #last_message_id = :mid, #last_from = :from, #last_preview = :preview, #last_ts = :ts".to_owned();
        let mut attrs = vec![
            attr::LAST_MESSAGE_ID,
            attr::LAST_FROM,
            attr::LAST_PREVIEW,
            attr::LAST_TS,
        ];
        if received {
            update.push_str(", #last_recv_ts = :ts");
            attrs.push(attr::LAST_RECV_TS);
        }
        let r = self
            .client
            .update_item()
            .table_name(&self.tables.sessions)
            .key(attr::USER_ID, s(owner.as_str()))
            .key(attr::PEER_ID, s(peer.as_str()))
            .update_expression(update)
            .condition_expression("attribute_not_exists(#last_ts) OR #last_ts < :ts")
            .set_expression_attribute_names(names(&attrs))
            .expression_attribute_values(":mid", s(job.message_id.to_string()))
            .expression_attribute_values(":from", s(job.from.as_str()))
            .expression_attribute_values(":preview", s(job.preview.as_str()))
            .expression_attribute_values(":ts", n(job.timestamp()))
            .send()
            .await;
        applied("UpdateItem", r)
    }
}

#[derive(Debug, Clone, Copy)]
enum Expect {
    /// The session's last message and last read are older than the message (or absent).
    Newest,
    /// Only the read mark is older than the message (or absent): the count commutes with other writers.
    ReadBefore,
}

#[derive(Debug, Clone, Copy)]
struct SessionWrite {
    set_last: bool,
    set_recv: bool,
    count_unread: bool,
    expect: Expect,
}

enum TxOutcome {
    Applied,
    AlreadyIndexed,
    SessionChanged,
    Conflict,
}

fn index_row(owner: &UserId, peer: &UserId, direction: &str, job: &HistoryJob, expires_at: Option<i64>) -> IndexItem {
    IndexItem {
        owner_id: owner.to_string(),
        sk: format!("{peer}#{}", time_key(&job.message_id)),
        peer_id: peer.to_string(),
        direction: direction.to_owned(),
        message_id: job.message_id.to_string(),
        timestamp: job.timestamp(),
        expires_at,
    }
}

impl Directory for DynamoStore {
    async fn register(&self, user: &UserId, now: i64) -> Res<()> {
        // Most connects are by known users: reading the row (half a read unit) is a tenth of the price of
        // writing it again (one write unit). A stale read only means an extra write that changes nothing.
        let known = self
            .client
            .get_item()
            .table_name(&self.tables.users)
            .key(attr::USER_ID, s(user.as_str()))
            .projection_expression("#user_id")
            .set_expression_attribute_names(names(&[attr::USER_ID]))
            .send()
            .await
            .map_err(|e| call_error("DynamoDB", "GetItem", e))?
            .item
            .is_some();
        if known {
            return Ok(());
        }
        self.client
            .update_item()
            .table_name(&self.tables.users)
            .key(attr::USER_ID, s(user.as_str()))
            .update_expression("SET #joined_at = if_not_exists(#joined_at, :now)")
            .set_expression_attribute_names(names(&[attr::JOINED_AT]))
            .expression_attribute_values(":now", n(now))
            .send()
            .await
            .map_err(|e| call_error("DynamoDB", "UpdateItem", e))?;
        Ok(())
    }

    async fn lookup(&self, users: &[UserId], known: &[UserId]) -> Res<HashMap<UserId, Presence>> {
        let checked: Vec<&UserId> = users.iter().collect::<HashSet<_>>().into_iter().collect();
        let known: Vec<&UserId> = known
            .iter()
            .collect::<HashSet<_>>()
            .into_iter()
            .filter(|u| !checked.contains(u))
            .collect();
        let mut out = HashMap::new();
        // Users (existence) and Presence (connections) of the checked users in one BatchGetItem: 2 keys each;
        // the known users' presence rides along (their Users rows are not read: half a read unit each).
        let (mut rest, mut rest_known) = (checked.as_slice(), known.as_slice());
        while !rest.is_empty() || !rest_known.is_empty() {
            let (kn, kr) = rest_known.split_at(rest_known.len().min(BATCH_GET_MAX));
            let (ch, cr) = rest.split_at(rest.len().min((BATCH_GET_MAX - kn.len()) / 2));
            (rest, rest_known) = (cr, kr);
            let mut request = HashMap::new();
            if !ch.is_empty() {
                let users_keys = KeysAndAttributes::builder()
                    .set_keys(Some(Self::user_keys(ch)))
                    .projection_expression("#user_id")
                    .set_expression_attribute_names(names(&[attr::USER_ID]))
                    .build()
                    .map_err(|e| build_err("BatchGetItem", e))?;
                request.insert(self.tables.users.clone(), users_keys);
            }
            let presence_keys = KeysAndAttributes::builder()
                .set_keys(Some(Self::user_keys(&[ch, kn].concat())))
                .build()
                .map_err(|e| build_err("BatchGetItem", e))?;
            request.insert(self.tables.presence.clone(), presence_keys);
            let mut got = self.batch_get(request).await?;
            let mut presence: HashMap<String, Presence> = HashMap::new();
            for item in got.remove(&self.tables.presence).unwrap_or_default() {
                let p: PresenceItem = from_item("presence", item)?;
                presence.insert(p.user_id.clone(), p.into_presence());
            }
            let existing = got
                .remove(&self.tables.users)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|item| {
                    item.get(attr::USER_ID)
                        .and_then(|v| v.as_s().ok())
                        .and_then(|u| UserId::parse(u).ok())
                });
            for user in existing.chain(kn.iter().map(|u| (*u).clone())) {
                let p = presence.remove(user.as_str()).unwrap_or_default();
                out.insert(user, p);
            }
        }
        Ok(out)
    }
}

/// Rate-limit counters live in Connections next to the connection they count (same lifetime, same TTL), as
/// `{connection}#w{window}` items: one `ADD` per frame, no read.
impl FrameCounter for DynamoStore {
    async fn count_frame(&self, connection: &ConnectionId, window: i64, expires_at: i64) -> Res<u64> {
        let r = self
            .client
            .update_item()
            .table_name(&self.tables.connections)
            .key(attr::CONNECTION_ID, s(format!("{connection}#w{window}")))
            .update_expression("ADD #frames :one SET #expires_at = :exp")
            .set_expression_attribute_names(names(&[attr::FRAMES, attr::EXPIRES_AT]))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":exp", n(expires_at))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| call_error("DynamoDB", "UpdateItem", e))?;
        Ok(r.attributes
            .as_ref()
            .and_then(|a| a.get(attr::FRAMES))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(1))
    }
}

impl PresenceStore for DynamoStore {
    async fn open(&self, c: &NewConnection) -> Res<Transition> {
        let item = ConnectionItem {
            connection_id: c.id.to_string(),
            user_id: c.user.to_string(),
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
                .map_err(|e| call_error("DynamoDB", "PutItem", e))
        };
        let (_, before) = futures::try_join!(put, self.add_presence(c))?;
        let Some(before) = before else {
            return Ok(Transition::CameOnline);
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
        Ok(if was_online {
            Transition::Unchanged
        } else {
            Transition::CameOnline
        })
    }

    async fn close(&self, user: &UserId, connection: &ConnectionId, now: i64) -> Res<Transition> {
        self.close_if(user, connection, now, None).await
    }

    async fn close_gone(&self, user: &UserId, connection: &ConnectionId, now: i64, max_expiry: i64) -> Res<Transition> {
        self.close_if(user, connection, now, Some(max_expiry)).await
    }

    async fn presence(&self, users: &[UserId]) -> Res<HashMap<UserId, Presence>> {
        self.presence_items(users).await
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
}

impl DynamoStore {
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
                .map_err(|e| call_error("DynamoDB", "DeleteItem", e))
        };
        let remove = async {
            let r = self
                .client
                .update_item()
                .table_name(&self.tables.presence)
                .key(attr::USER_ID, s(user.as_str()))
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
            match r {
                Ok(out) => Ok(Some(from_item::<PresenceItem>(
                    "presence",
                    out.attributes.unwrap_or_default(),
                )?)),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|x| x.is_conditional_check_failed_exception()) =>
                {
                    Ok(None)
                }
                Err(e) => Err(call_error("DynamoDB", "UpdateItem", e)),
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
}

impl DynamoStore {
    /// Sets one attribute of an existing presence item (a user that never connected has none: nothing to do).
    async fn presence_set(&self, user: &UserId, update: &str, attributes: &[&str], value: Av) -> Res<()> {
        let mut all = attributes.to_vec();
        all.push(attr::USER_ID);
        let r = self
            .client
            .update_item()
            .table_name(&self.tables.presence)
            .key(attr::USER_ID, s(user.as_str()))
            .update_expression(update)
            .condition_expression("attribute_exists(#user_id)")
            .set_expression_attribute_names(names(&all))
            .expression_attribute_values(":v", value)
            .send()
            .await;
        applied("UpdateItem", r).map(|_| ())
    }
}

impl MessageStore for DynamoStore {
    async fn claim(&self, key: &ClaimKey, fresh: &Claim, expires_at: i64) -> Res<Option<Claim>> {
        let item = ClaimItem {
            claim: key.as_str().to_owned(),
            message_id: fresh.message_id.to_string(),
            lease_until: fresh.lease_until,
            done: fresh.done,
            seq: fresh.seq,
            expires_at,
        };
        let r = self
            .client
            .put_item()
            .table_name(&self.tables.send_claims)
            .set_item(Some(to_item("claim", &item)?))
            .condition_expression("attribute_not_exists(#claim)")
            .set_expression_attribute_names(names(&[attr::CLAIM]))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match r {
            Ok(_) => Ok(None),
            Err(e) => match e.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(ccf)) => match ccf.item() {
                    Some(existing) => Ok(Some(from_item::<ClaimItem>("claim", existing.clone())?.try_into()?)),
                    None => self.read_claim(key).await,
                },
                _ => Err(call_error("DynamoDB", "PutItem", e)),
            },
        }
    }

    async fn read_claim(&self, key: &ClaimKey) -> Res<Option<Claim>> {
        let r = self
            .client
            .get_item()
            .table_name(&self.tables.send_claims)
            .key(attr::CLAIM, s(key.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| call_error("DynamoDB", "GetItem", e))?;
        r.item
            .map(|i| from_item::<ClaimItem>("claim", i).and_then(Claim::try_from))
            .transpose()
    }

    async fn take_over(&self, key: &ClaimKey, seen: &Claim, lease_until: i64) -> Res<bool> {
        let values = HashMap::from([
            (":new".to_owned(), n(lease_until)),
            (":seen".to_owned(), n(seen.lease_until)),
            (":false".to_owned(), Av::Bool(false)),
        ]);
        self.claim_update(
            key,
            "SET #lease_until = :new",
            Some("#lease_until = :seen AND #done = :false"),
            values,
        )
        .await
    }

    async fn release(&self, key: &ClaimKey, lease_until: i64) -> Res<()> {
        let values = HashMap::from([
            (":zero".to_owned(), n(0)),
            (":mine".to_owned(), n(lease_until)),
            (":false".to_owned(), Av::Bool(false)),
        ]);
        self.claim_update(
            key,
            "SET #lease_until = :zero",
            Some("#lease_until = :mine AND #done = :false"),
            values,
        )
        .await
        .map(drop)
    }

    async fn finish(&self, key: &ClaimKey, seq: Option<u64>) -> Res<()> {
        let mut values = HashMap::from([(":true".to_owned(), Av::Bool(true))]);
        let update = match seq {
            Some(v) => {
                values.insert(":seq".into(), n(v));
                "SET #done = :true, #seq = :seq"
            }
            None => "SET #done = :true",
        };
        self.claim_update(key, update, None, values).await.map(drop)
    }

    async fn get_message(&self, id: &MessageId) -> Res<Option<StoredMessage>> {
        self.read_message(id).await
    }

    async fn forget(&self, key: &ClaimKey, claim: &Claim) -> Res<()> {
        let r = self
            .client
            .delete_item()
            .table_name(&self.tables.send_claims)
            .key(attr::CLAIM, s(key.as_str()))
            .condition_expression("#message_id = :mid")
            .set_expression_attribute_names(names(&[attr::MESSAGE_ID]))
            .expression_attribute_values(":mid", s(claim.message_id.to_string()))
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|x| x.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(call_error("DynamoDB", "DeleteItem", e)),
        }
    }

    async fn put_message(&self, message: &StoredMessage, expires_at: Option<i64>) -> Res<Option<StoredMessage>> {
        let item = to_item("message", &MessageItem::new(message, expires_at))?;
        let r = self
            .client
            .put_item()
            .table_name(&self.tables.messages)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#message_id)")
            .set_expression_attribute_names(names(&[attr::MESSAGE_ID]))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match r {
            Ok(_) => Ok(None),
            Err(e) => match e.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(ccf)) => match ccf.item() {
                    Some(existing) => Ok(Some(from_item::<MessageItem>("message", existing.clone())?.try_into()?)),
                    None => self.read_message(&message.id).await,
                },
                _ => Err(call_error("DynamoDB", "PutItem", e)),
            },
        }
    }

    async fn mark_delivered(&self, acker: &UserId, ids: &[MessageId], now: i64) -> Res<Vec<StoredMessage>> {
        let results: Vec<Res<Option<StoredMessage>>> = stream::iter(ids.iter().copied())
            .map(move |id| async move { self.ack_one(acker, &id, now).await })
            .buffer_unordered(ACK_CONCURRENCY)
            .collect()
            .await;
        let mut out = Vec::new();
        for r in results {
            out.extend(r?);
        }
        Ok(out)
    }
}

impl IndexStore for DynamoStore {
    async fn read_direct(&self, reader: &UserId, peer: &UserId, up_to: Option<i64>) -> Res<Option<i64>> {
        if let Some(t) = up_to {
            // The client names what it showed: the mark moves there even before the history consumer has
            // indexed that message (it then counts nothing up to the mark). Never backwards.
            let r = self
                .client
                .update_item()
                .table_name(&self.tables.sessions)
                .key(attr::USER_ID, s(reader.as_str()))
                .key(attr::PEER_ID, s(peer.as_str()))
                .update_expression("SET #unread = :zero, #last_read_ts = :t")
                .condition_expression("attribute_not_exists(#last_read_ts) OR #last_read_ts < :t")
                .set_expression_attribute_names(names(&[attr::UNREAD, attr::LAST_READ_TS]))
                .expression_attribute_values(":zero", n(0))
                .expression_attribute_values(":t", n(t))
                .send()
                .await;
            return Ok(applied("UpdateItem", r)?.then_some(t));
        }
        let r = self
            .client
            .update_item()
            .table_name(&self.tables.sessions)
            .key(attr::USER_ID, s(reader.as_str()))
            .key(attr::PEER_ID, s(peer.as_str()))
            .update_expression("SET #unread = :zero, #last_read_ts = #last_recv_ts")
            // Nothing received from the peer yet: nothing to read (and the read mark must not move back).
            .condition_expression("attribute_exists(#last_recv_ts)")
            .set_expression_attribute_names(names(&[attr::UNREAD, attr::LAST_READ_TS, attr::LAST_RECV_TS]))
            .expression_attribute_values(":zero", n(0))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match r {
            Ok(out) => {
                let old = out.attributes.unwrap_or_default();
                let num = |k: &str| {
                    old.get(k)
                        .and_then(|v| v.as_n().ok())
                        .and_then(|v| v.parse::<i64>().ok())
                };
                let (recv, read) = (num(attr::LAST_RECV_TS), num(attr::LAST_READ_TS));
                Ok(recv.filter(|r| read.is_none_or(|d| d < *r)))
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|x| x.is_conditional_check_failed_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(call_error("DynamoDB", "UpdateItem", e)),
        }
    }

    async fn index_direct(&self, job: &HistoryJob, expires_at: Option<i64>) -> Res<()> {
        let recipient_row = to_item("index row", &index_row(&job.to, &job.from, "received", job, expires_at))?;
        let sender_row = to_item("index row", &index_row(&job.from, &job.to, "sent", job, expires_at))?;
        futures::try_join!(
            self.index_recipient(job, recipient_row),
            self.index_sender(job, sender_row)
        )?;
        Ok(())
    }
}

impl DynamoStore {
    /// For tests and tools: the settings this store was built with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }
}

/// Items one BatchWriteItem call takes.
const BATCH_WRITE_MAX: usize = 25;
/// Items one TransactWriteItems call takes.
const TRANSACTION_MAX: usize = 100;

impl DynamoStore {
    /// BatchWriteItem puts into one table, 25 a call, retrying unprocessed items with backoff.
    async fn batch_put(&self, table: &str, items: Vec<Item>) -> Res<()> {
        use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
        for chunk in items.chunks(BATCH_WRITE_MAX) {
            let mut pending: Vec<WriteRequest> = chunk
                .iter()
                .map(|i| {
                    PutRequest::builder()
                        .set_item(Some(i.clone()))
                        .build()
                        .map(|p| WriteRequest::builder().put_request(p).build())
                        .map_err(|e| build_err("BatchWriteItem", e))
                })
                .collect::<Res<_>>()?;
            let mut backoff = Duration::from_millis(25);
            for attempt in 0..6 {
                if pending.is_empty() {
                    break;
                }
                if attempt > 0 {
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                let r = self
                    .client
                    .batch_write_item()
                    .request_items(table, pending)
                    .send()
                    .await
                    .map_err(|e| call_error("DynamoDB", "BatchWriteItem", e))?;
                pending = r
                    .unprocessed_items
                    .and_then(|mut u| u.remove(table))
                    .unwrap_or_default();
            }
            if !pending.is_empty() {
                return Err(BackendError::Call {
                    service: "DynamoDB",
                    operation: "BatchWriteItem",
                    retryable: true,
                    source: "items still unprocessed after retries (throttled)".into(),
                });
            }
        }
        Ok(())
    }

    fn member_key(group: &GroupId, user: &UserId) -> Item {
        HashMap::from([
            (attr::GROUP_ID.to_owned(), s(group.as_str())),
            (attr::USER_ID.to_owned(), s(user.as_str())),
        ])
    }

    /// Every page of a query.
    async fn query_all(
        &self,
        query: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
    ) -> Res<Vec<Item>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let r = query
                .clone()
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| call_error("DynamoDB", "Query", e))?;
            items.extend(r.items.unwrap_or_default());
            start = r.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    /// A two-item transaction over a member row and its group; the cancellation reason of each item.
    async fn member_transaction(&self, items: Vec<TransactWriteItem>) -> Res<Option<Vec<Option<String>>>> {
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(None),
            Err(e) => match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(tc)) => Ok(Some(
                    tc.cancellation_reasons()
                        .iter()
                        .map(|r| r.code().map(str::to_owned))
                        .collect(),
                )),
                _ => Err(call_error("DynamoDB", "TransactWriteItems", e)),
            },
        }
    }
}

fn ccf(reason: Option<&Option<String>>) -> bool {
    reason.and_then(|r| r.as_deref()) == Some("ConditionalCheckFailed")
}

impl GroupStore for DynamoStore {
    async fn create_group(&self, group: &Group, members: &[Member]) -> Res<()> {
        let group_item = to_item("group", &GroupItem::new(group))?;
        let rows = members
            .iter()
            .map(|m| to_item("member", &MemberItem::new(&group.id, m)))
            .collect::<Res<Vec<_>>>()?;
        if rows.len() < TRANSACTION_MAX {
            let mut items = vec![
                TransactWriteItem::builder()
                    .put(
                        Put::builder()
                            .table_name(&self.tables.groups)
                            .set_item(Some(group_item))
                            .condition_expression("attribute_not_exists(#group_id)")
                            .set_expression_attribute_names(names(&[attr::GROUP_ID]))
                            .build()
                            .map_err(|e| build_err("TransactWriteItems", e))?,
                    )
                    .build(),
            ];
            for r in rows {
                items.push(
                    TransactWriteItem::builder()
                        .put(
                            Put::builder()
                                .table_name(&self.tables.group_members)
                                .set_item(Some(r))
                                .build()
                                .map_err(|e| build_err("TransactWriteItems", e))?,
                        )
                        .build(),
                );
            }
            self.client
                .transact_write_items()
                .set_transact_items(Some(items))
                .send()
                .await
                .map_err(|e| call_error("DynamoDB", "TransactWriteItems", e))?;
            return Ok(());
        }
        // Too many for one transaction: members first, the group item last (until it exists, no group is visible).
        self.batch_put(&self.tables.group_members, rows).await?;
        self.client
            .put_item()
            .table_name(&self.tables.groups)
            .set_item(Some(group_item))
            .condition_expression("attribute_not_exists(#group_id)")
            .set_expression_attribute_names(names(&[attr::GROUP_ID]))
            .send()
            .await
            .map_err(|e| call_error("DynamoDB", "PutItem", e))?;
        Ok(())
    }

    async fn membership(&self, group: &GroupId, user: &UserId) -> Res<(Option<Group>, Option<Member>)> {
        let group_keys = KeysAndAttributes::builder()
            .keys(HashMap::from([(attr::GROUP_ID.to_owned(), s(group.as_str()))]))
            .build()
            .map_err(|e| build_err("BatchGetItem", e))?;
        let member_keys = KeysAndAttributes::builder()
            .keys(Self::member_key(group, user))
            .build()
            .map_err(|e| build_err("BatchGetItem", e))?;
        let mut got = self
            .batch_get(HashMap::from([
                (self.tables.groups.clone(), group_keys),
                (self.tables.group_members.clone(), member_keys),
            ]))
            .await?;
        let g = got.remove(&self.tables.groups).and_then(|mut v| v.pop());
        let m = got.remove(&self.tables.group_members).and_then(|mut v| v.pop());
        Ok((
            g.map(|i| from_item::<GroupItem>("group", i).and_then(Group::try_from))
                .transpose()?,
            m.map(|i| from_item::<MemberItem>("member", i).and_then(Member::try_from))
                .transpose()?,
        ))
    }

    async fn members(&self, group: &GroupId) -> Res<Vec<Member>> {
        let q = self
            .client
            .query()
            .table_name(&self.tables.group_members)
            .key_condition_expression("#group_id = :g")
            .set_expression_attribute_names(names(&[attr::GROUP_ID]))
            .expression_attribute_values(":g", s(group.as_str()));
        self.query_all(q)
            .await?
            .into_iter()
            .map(|i| from_item::<MemberItem>("member", i).and_then(Member::try_from))
            .collect()
    }

    async fn member_ids(&self, group: &GroupId) -> Res<Vec<UserId>> {
        let q = self
            .client
            .query()
            .table_name(&self.tables.group_members)
            .key_condition_expression("#group_id = :g")
            .projection_expression("#user_id")
            .set_expression_attribute_names(names(&[attr::GROUP_ID, attr::USER_ID]))
            .expression_attribute_values(":g", s(group.as_str()));
        Ok(self
            .query_all(q)
            .await?
            .into_iter()
            .filter_map(|i| {
                i.get(attr::USER_ID)
                    .and_then(|v| v.as_s().ok())
                    .and_then(|u| UserId::parse(u).ok())
            })
            .collect())
    }

    async fn add_member(&self, group: &GroupId, member: &Member, max_members: u64) -> Res<Added> {
        let put = Put::builder()
            .table_name(&self.tables.group_members)
            .set_item(Some(to_item("member", &MemberItem::new(group, member))?))
            .condition_expression("attribute_not_exists(#user_id)")
            .set_expression_attribute_names(names(&[attr::USER_ID]))
            .build()
            .map_err(|e| build_err("TransactWriteItems", e))?;
        let count = Update::builder()
            .table_name(&self.tables.groups)
            .key(attr::GROUP_ID, s(group.as_str()))
            .update_expression("ADD #member_count :one")
            .condition_expression("attribute_exists(#group_id) AND #member_count < :max")
            .set_expression_attribute_names(names(&[attr::MEMBER_COUNT, attr::GROUP_ID]))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":max", n(max_members))
            .build()
            .map_err(|e| build_err("TransactWriteItems", e))?;
        let reasons = self
            .member_transaction(vec![
                TransactWriteItem::builder().put(put).build(),
                TransactWriteItem::builder().update(count).build(),
            ])
            .await?;
        Ok(match reasons {
            None => Added::Added,
            Some(r) if ccf(r.first()) => Added::AlreadyMember,
            Some(r) if ccf(r.get(1)) => {
                let (g, _) = self.membership(group, &member.user).await?;
                if g.is_some() { Added::Full } else { Added::NoGroup }
            }
            Some(_) => {
                return Err(BackendError::Call {
                    service: "DynamoDB",
                    operation: "TransactWriteItems",
                    retryable: true,
                    source: "transaction conflict".into(),
                });
            }
        })
    }

    async fn remove_member(&self, group: &GroupId, user: &UserId) -> Res<bool> {
        let delete = aws_sdk_dynamodb::types::Delete::builder()
            .table_name(&self.tables.group_members)
            .set_key(Some(Self::member_key(group, user)))
            .condition_expression("attribute_exists(#user_id)")
            .set_expression_attribute_names(names(&[attr::USER_ID]))
            .build()
            .map_err(|e| build_err("TransactWriteItems", e))?;
        let count = Update::builder()
            .table_name(&self.tables.groups)
            .key(attr::GROUP_ID, s(group.as_str()))
            .update_expression("ADD #member_count :minus")
            .condition_expression("attribute_exists(#group_id)")
            .set_expression_attribute_names(names(&[attr::MEMBER_COUNT, attr::GROUP_ID]))
            .expression_attribute_values(":minus", n(-1))
            .build()
            .map_err(|e| build_err("TransactWriteItems", e))?;
        let reasons = self
            .member_transaction(vec![
                TransactWriteItem::builder().delete(delete).build(),
                TransactWriteItem::builder().update(count).build(),
            ])
            .await?;
        match reasons {
            None => Ok(true),
            Some(r) if ccf(r.first()) => Ok(false),
            // The group item is gone (the group ended): removing the row alone is what is left to do.
            Some(r) if ccf(r.get(1)) => {
                self.client
                    .delete_item()
                    .table_name(&self.tables.group_members)
                    .set_key(Some(Self::member_key(group, user)))
                    .send()
                    .await
                    .map_err(|e| call_error("DynamoDB", "DeleteItem", e))?;
                Ok(true)
            }
            Some(_) => Err(BackendError::Call {
                service: "DynamoDB",
                operation: "TransactWriteItems",
                retryable: true,
                source: "transaction conflict".into(),
            }),
        }
    }

    async fn transfer(&self, group: &GroupId, from: &UserId, to: &UserId) -> Res<bool> {
        let r = self
            .client
            .update_item()
            .table_name(&self.tables.groups)
            .key(attr::GROUP_ID, s(group.as_str()))
            .update_expression("SET #owner = :to")
            .condition_expression("#owner = :from")
            .set_expression_attribute_names(names(&[attr::OWNER]))
            .expression_attribute_values(":to", s(to.as_str()))
            .expression_attribute_values(":from", s(from.as_str()))
            .send()
            .await;
        applied("UpdateItem", r)
    }

    async fn delete_group(&self, group: &GroupId) -> Res<()> {
        self.client
            .delete_item()
            .table_name(&self.tables.groups)
            .key(attr::GROUP_ID, s(group.as_str()))
            .send()
            .await
            .map_err(|e| call_error("DynamoDB", "DeleteItem", e))?;
        Ok(())
    }

    async fn groups_of(&self, user: &UserId) -> Res<Vec<(Group, Member)>> {
        // ByUser holds keys only (so members' marks never write it): the group ids, then each group's item and the
        // user's member row in one BatchGetItem per 50 groups.
        let q = self
            .client
            .query()
            .table_name(&self.tables.group_members)
            .index_name(attr::BY_USER_INDEX)
            .key_condition_expression("#user_id = :u")
            .set_expression_attribute_names(names(&[attr::USER_ID]))
            .expression_attribute_values(":u", s(user.as_str()));
        let ids: Vec<GroupId> = self
            .query_all(q)
            .await?
            .iter()
            .map(|i| {
                let id = i.get(attr::GROUP_ID).and_then(|v| v.as_s().ok()).map(String::as_str);
                GroupId::parse(id.unwrap_or_default()).map_err(|e| BackendError::corrupt("member", e))
            })
            .collect::<Res<_>>()?;
        let mut out = Vec::new();
        for chunk in ids.chunks(BATCH_GET_MAX / 2) {
            let group_keys = KeysAndAttributes::builder()
                .set_keys(Some(
                    chunk
                        .iter()
                        .map(|g| HashMap::from([(attr::GROUP_ID.to_owned(), s(g.as_str()))]))
                        .collect(),
                ))
                .build()
                .map_err(|e| build_err("BatchGetItem", e))?;
            let member_keys = KeysAndAttributes::builder()
                .set_keys(Some(chunk.iter().map(|g| Self::member_key(g, user)).collect()))
                .build()
                .map_err(|e| build_err("BatchGetItem", e))?;
            let mut got = self
                .batch_get(HashMap::from([
                    (self.tables.groups.clone(), group_keys),
                    (self.tables.group_members.clone(), member_keys),
                ]))
                .await?;
            let mut groups: HashMap<GroupId, Group> = got
                .remove(&self.tables.groups)
                .unwrap_or_default()
                .into_iter()
                .map(|i| {
                    from_item::<GroupItem>("group", i)
                        .and_then(Group::try_from)
                        .map(|g| (g.id.clone(), g))
                })
                .collect::<Res<_>>()?;
            // A row whose group item is gone (ended, or a create that failed half-way) is not a group; a row gone
            // since the query (the user left) is not a membership.
            for item in got.remove(&self.tables.group_members).unwrap_or_default() {
                let row: MemberItem = from_item("member", item)?;
                let id = GroupId::parse(&row.group_id).map_err(|e| BackendError::corrupt("member", e))?;
                if let Some(group) = groups.remove(&id) {
                    out.push((group, Member::try_from(row)?));
                }
            }
        }
        Ok(out)
    }

    async fn next_seq(&self, group: &GroupId, last: &LastMessage) -> Res<Option<u64>> {
        let r = self
            .client
            .update_item()
            .table_name(&self.tables.groups)
            .key(attr::GROUP_ID, s(group.as_str()))
            .update_expression(
                "ADD #last_seq :one SET #last_message_id = :mid, #last_from = :from, #last_preview = :preview, #last_ts = :ts",
            )
            .condition_expression("attribute_exists(#group_id)")
            .set_expression_attribute_names(names(&[
                attr::LAST_SEQ,
                attr::LAST_MESSAGE_ID,
                attr::LAST_FROM,
                attr::LAST_PREVIEW,
                attr::LAST_TS,
                attr::GROUP_ID,
            ]))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":mid", s(last.message_id.to_string()))
            .expression_attribute_values(":from", s(last.from.as_str()))
            .expression_attribute_values(":preview", s(last.preview.as_str()))
            .expression_attribute_values(":ts", n(last.timestamp))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        match r {
            Ok(out) => {
                let seq = out
                    .attributes
                    .and_then(|a| {
                        a.get(attr::LAST_SEQ)
                            .and_then(|v| v.as_n().ok())
                            .and_then(|v| v.parse().ok())
                    })
                    .ok_or_else(|| BackendError::corrupt("group", "ADD returned no sequence"))?;
                Ok(Some(seq))
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|x| x.is_conditional_check_failed_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(call_error("DynamoDB", "UpdateItem", e)),
        }
    }

    async fn record_group_message(&self, message: &StoredMessage, expires_at: Option<i64>) -> Res<()> {
        let crate::frames::Target::Group(group) = &message.target else {
            return Err(BackendError::corrupt("message", "not a group message"));
        };
        let item = GroupHistoryItem {
            group_id: group.to_string(),
            seq: message.seq.unwrap_or_default(),
            message_id: message.id.to_string(),
            timestamp: message.timestamp(),
            sender: message.from.to_string(),
            expires_at,
        };
        self.client
            .put_item()
            .table_name(&self.tables.group_history)
            .set_item(Some(to_item("group history row", &item)?))
            .send()
            .await
            .map_err(|e| call_error("DynamoDB", "PutItem", e))?;
        Ok(())
    }

    async fn mark(&self, group: &GroupId, user: &UserId, mark: Mark, seq: u64) -> Res<Marked> {
        let field = match mark {
            Mark::Ack => attr::LAST_ACK_SEQ,
            Mark::Read => attr::LAST_READ_SEQ,
        };
        let r = self
            .client
            .update_item()
            .table_name(&self.tables.group_members)
            .set_key(Some(Self::member_key(group, user)))
            .update_expression("SET #mark = :seq")
            .condition_expression("attribute_exists(#user_id) AND (attribute_not_exists(#mark) OR #mark < :seq)")
            .expression_attribute_names("#mark", field)
            .expression_attribute_names("#user_id", attr::USER_ID)
            .expression_attribute_values(":seq", n(seq))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match r {
            Ok(_) => Ok(Marked::Moved),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(c)) => Ok(if c.item().is_some() {
                    Marked::Unchanged
                } else {
                    Marked::NotMember
                }),
                _ => Err(call_error("DynamoDB", "UpdateItem", e)),
            },
        }
    }
}

impl FriendStore for DynamoStore {
    async fn befriend(&self, a: &UserId, b: &UserId, now: i64) -> Res<()> {
        let row = |x: &UserId, y: &UserId| -> Res<TransactWriteItem> {
            let item = HashMap::from([
                (attr::USER_ID.to_owned(), s(x.as_str())),
                (attr::FRIEND_ID.to_owned(), s(y.as_str())),
                (attr::CREATED_AT.to_owned(), n(now)),
            ]);
            let put = Put::builder()
                .table_name(&self.tables.friends)
                .set_item(Some(item))
                .build()
                .map_err(|e| build_err("TransactWriteItems", e))?;
            Ok(TransactWriteItem::builder().put(put).build())
        };
        // Both directions or neither: friendship is mutual.
        self.client
            .transact_write_items()
            .transact_items(row(a, b)?)
            .transact_items(row(b, a)?)
            .send()
            .await
            .map_err(|e| call_error("DynamoDB", "TransactWriteItems", e))?;
        Ok(())
    }

    async fn unfriend(&self, a: &UserId, b: &UserId) -> Res<()> {
        let row = |x: &UserId, y: &UserId| -> Res<TransactWriteItem> {
            let delete = aws_sdk_dynamodb::types::Delete::builder()
                .table_name(&self.tables.friends)
                .key(attr::USER_ID, s(x.as_str()))
                .key(attr::FRIEND_ID, s(y.as_str()))
                .build()
                .map_err(|e| build_err("TransactWriteItems", e))?;
            Ok(TransactWriteItem::builder().delete(delete).build())
        };
        self.client
            .transact_write_items()
            .transact_items(row(a, b)?)
            .transact_items(row(b, a)?)
            .send()
            .await
            .map_err(|e| call_error("DynamoDB", "TransactWriteItems", e))?;
        Ok(())
    }

    async fn friends_of(&self, user: &UserId) -> Res<Vec<UserId>> {
        let q = self
            .client
            .query()
            .table_name(&self.tables.friends)
            .key_condition_expression("#user_id = :u")
            .projection_expression("#friend_id")
            .set_expression_attribute_names(names(&[attr::USER_ID, attr::FRIEND_ID]))
            .expression_attribute_values(":u", s(user.as_str()));
        Ok(self
            .query_all(q)
            .await?
            .into_iter()
            .filter_map(|i| {
                i.get(attr::FRIEND_ID)
                    .and_then(|v| v.as_s().ok())
                    .and_then(|f| UserId::parse(f).ok())
            })
            .collect())
    }
}

fn group_entry(item: Item) -> Res<GroupEntry> {
    let row: GroupHistoryItem = from_item("group history row", item)?;
    let bad = |e: crate::ids::FieldError| BackendError::corrupt("group history row", e);
    Ok(GroupEntry {
        seq: row.seq,
        message_id: MessageId::parse(&row.message_id).map_err(bad)?,
        sender: UserId::parse(&row.sender).map_err(bad)?,
    })
}

impl PullStore for DynamoStore {
    async fn sessions(&self, user: &UserId, limit: usize) -> Res<Vec<Session>> {
        let q = self
            .client
            .query()
            .table_name(&self.tables.sessions)
            .key_condition_expression("#user_id = :u")
            .set_expression_attribute_names(names(&[attr::USER_ID]))
            .expression_attribute_values(":u", s(user.as_str()));
        let mut sessions: Vec<Session> = self
            .query_all(q)
            .await?
            .into_iter()
            .map(|i| from_item::<SessionItem>("session", i).map(SessionItem::into_session))
            .collect::<Res<_>>()?;
        sessions.sort_by_key(|s| std::cmp::Reverse(s.last.as_ref().map(|l| l.timestamp).unwrap_or(0)));
        sessions.truncate(limit);
        Ok(sessions)
    }

    async fn session(&self, user: &UserId, peer: &UserId) -> Res<Option<Session>> {
        let r = self
            .client
            .get_item()
            .table_name(&self.tables.sessions)
            .key(attr::USER_ID, s(user.as_str()))
            .key(attr::PEER_ID, s(peer.as_str()))
            .send()
            .await
            .map_err(|e| call_error("DynamoDB", "GetItem", e))?;
        r.item
            .map(|i| from_item::<SessionItem>("session", i).map(SessionItem::into_session))
            .transpose()
    }

    async fn inbox(&self, user: &UserId, after: Option<&MessageId>, limit: usize) -> Res<(Vec<StoredMessage>, bool)> {
        let mut q = self
            .client
            .query()
            .table_name(&self.tables.messages)
            .index_name(attr::INBOX_INDEX)
            .limit(limit as i32 + 1)
            .expression_attribute_values(":u", s(user.as_str()));
        q = match after {
            Some(id) => q
                .key_condition_expression("#inbox = :u AND #message_id > :after")
                .set_expression_attribute_names(names(&[attr::INBOX, attr::MESSAGE_ID]))
                .expression_attribute_values(":after", s(id.to_string())),
            None => q
                .key_condition_expression("#inbox = :u")
                .set_expression_attribute_names(names(&[attr::INBOX])),
        };
        let r = q.send().await.map_err(|e| call_error("DynamoDB", "Query", e))?;
        let mut messages = r
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|i| from_item::<MessageItem>("message", i).and_then(StoredMessage::try_from))
            .collect::<Res<Vec<_>>>()?;
        let more = messages.len() > limit || r.last_evaluated_key.is_some() && messages.len() >= limit;
        messages.truncate(limit);
        Ok((messages, more))
    }

    async fn group_entries(&self, group: &GroupId, after: u64, up_to: u64, limit: usize) -> Res<Vec<GroupEntry>> {
        if after >= up_to {
            return Ok(Vec::new());
        }
        let r = self
            .client
            .query()
            .table_name(&self.tables.group_history)
            .key_condition_expression("#group_id = :g AND #seq BETWEEN :lo AND :hi")
            .set_expression_attribute_names(names(&[attr::GROUP_ID, attr::SEQ]))
            .expression_attribute_values(":g", s(group.as_str()))
            .expression_attribute_values(":lo", n(after + 1))
            .expression_attribute_values(":hi", n(up_to))
            .limit(limit as i32)
            .send()
            .await
            .map_err(|e| call_error("DynamoDB", "Query", e))?;
        r.items.unwrap_or_default().into_iter().map(group_entry).collect()
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
        let r = self
            .client
            .query()
            .table_name(&self.tables.group_history)
            .key_condition_expression("#group_id = :g AND #seq BETWEEN :lo AND :hi")
            .set_expression_attribute_names(names(&[attr::GROUP_ID, attr::SEQ]))
            .expression_attribute_values(":g", s(group.as_str()))
            .expression_attribute_values(":lo", n(floor + 1))
            .expression_attribute_values(":hi", n(before.min(i64::MAX as u64) - 1))
            .scan_index_forward(false)
            .limit(limit as i32)
            .send()
            .await
            .map_err(|e| call_error("DynamoDB", "Query", e))?;
        r.items.unwrap_or_default().into_iter().map(group_entry).collect()
    }

    async fn conversation(
        &self,
        owner: &UserId,
        peer: &UserId,
        before: Option<&MessageId>,
        limit: usize,
    ) -> Res<ConversationPage> {
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
            .set_expression_attribute_names(names(&[attr::OWNER_ID, attr::SK]))
            .expression_attribute_values(":o", s(owner.as_str()))
            .expression_attribute_values(":lo", s(low))
            .expression_attribute_values(":hi", s(high))
            .scan_index_forward(false)
            .limit(limit as i32 + 2)
            .send()
            .await
            .map_err(|e| call_error("DynamoDB", "Query", e))?;
        let mut ids: Vec<MessageId> = r
            .items
            .unwrap_or_default()
            .iter()
            .filter_map(|i| i.get(attr::SK).and_then(|v| v.as_s().ok()))
            .filter_map(|sk| sk.rsplit_once('#').and_then(|(_, id)| MessageId::parse(id).ok()))
            .filter(|id| Some(id) != before)
            .collect();
        let more = ids.len() > limit;
        ids.truncate(limit);
        Ok(ConversationPage { ids, more })
    }

    async fn messages(&self, ids: &[MessageId]) -> Res<HashMap<MessageId, StoredMessage>> {
        let unique: Vec<&MessageId> = ids.iter().collect::<HashSet<_>>().into_iter().collect();
        let mut out = HashMap::new();
        for chunk in unique.chunks(BATCH_GET_MAX) {
            let keys: Vec<Item> = chunk
                .iter()
                .map(|id| {
                    HashMap::from([
                        (attr::MESSAGE_ID.to_owned(), s(id.to_string())),
                        (attr::TIMESTAMP.to_owned(), n(id.timestamp())),
                    ])
                })
                .collect();
            let request = KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .build()
                .map_err(|e| build_err("BatchGetItem", e))?;
            let mut got = self
                .batch_get(HashMap::from([(self.tables.messages.clone(), request)]))
                .await?;
            for item in got.remove(&self.tables.messages).unwrap_or_default() {
                let m: StoredMessage = from_item::<MessageItem>("message", item)?.try_into()?;
                out.insert(m.id, m);
            }
        }
        Ok(out)
    }

    async fn memberships(&self, user: &UserId, groups: &[GroupId]) -> Res<HashMap<GroupId, Member>> {
        let mut out = HashMap::new();
        for chunk in groups.chunks(BATCH_GET_MAX) {
            let keys: Vec<Item> = chunk.iter().map(|g| Self::member_key(g, user)).collect();
            let request = KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .build()
                .map_err(|e| build_err("BatchGetItem", e))?;
            let mut got = self
                .batch_get(HashMap::from([(self.tables.group_members.clone(), request)]))
                .await?;
            for item in got.remove(&self.tables.group_members).unwrap_or_default() {
                let row: MemberItem = from_item("member", item)?;
                let group = GroupId::parse(&row.group_id).map_err(|e| BackendError::corrupt("member", e))?;
                out.insert(group, Member::try_from(row)?);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_match_whole_tokens_only() {
        assert!(uses("SET #last_ts = :ts", "#last_ts"));
        assert!(!uses("SET #last_ts_x = :ts", "#last_ts"));
        assert!(uses("a = :ts AND b", ":ts"));
        assert!(!uses("a = :tsx", ":ts"));
        let n = names_in(&["SET #done = :true"], &[attr::LEASE_UNTIL, attr::DONE]).unwrap();
        assert_eq!(n.len(), 1);
        let v = values_in(
            &["SET #done = :true"],
            HashMap::from([(":true".into(), Av::Bool(true)), (":x".into(), n_av())]),
        );
        assert_eq!(v.unwrap().len(), 1);
    }

    fn n_av() -> Av {
        n(1)
    }
}
