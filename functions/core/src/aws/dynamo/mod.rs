//! The DynamoDB store: every table access of natter, one module per port.
//!
//! - [`items`]: one item struct per table (serde_dynamo), with the validated id types, and the attribute names.
//! - [`expr`]: attribute values, `#name` placeholders, keys.
//! - [`outcome`]: how a call ended (a failed condition, a cancelled transaction and its reasons, a retryable
//!   failure), read one way everywhere.
//! - One module per port: [`directory`] (Users), [`presence`] (Connections and Presence), [`limits`] (the frame
//!   counters), [`messages`] (SendClaims, Messages: send and ack), [`mailbox`] (Mailbox: what a recipient has
//!   not acknowledged, and the old Inbox index it replaces), [`index`] (MessageIndex and Sessions: the
//!   history consumer), [`read`] (read marks in Sessions), [`groups`] (Groups, GroupMembers, GroupHistory),
//!   [`invites`] (Invites), [`friends`], [`pull`] (the reads behind `sync` and `history`), [`changes`] (edits,
//!   deletes and reactions of a stored message, and the previews that follow them), [`devices`] (push devices
//!   and the coalescing of notifications).
//!
//! Key, update and condition expressions are written by hand, next to the code that needs them; this module holds
//! what several ports share: batched reads and writes that retry unprocessed keys, and paging through a query.

mod changes;
mod devices;
mod directory;
mod expr;
mod friends;
mod groups;
mod index;
mod invites;
pub(crate) mod items;
mod limits;
mod mailbox;
mod messages;
mod outcome;
mod presence;
mod pull;
mod read;
pub mod stream;

use crate::{
    config::{Settings, Tables},
    ids::UserId,
    ports::Res,
};
use aws_sdk_dynamodb::{
    Client,
    operation::query::{QueryOutput, builders::QueryFluentBuilder},
    types::{
        AttributeValue, KeysAndAttributes, PutRequest, TransactWriteItem, WriteRequest,
        builders::{DeleteBuilder, PutBuilder, UpdateBuilder},
    },
};
use outcome::{failed, retryable, unbuildable};
use std::{collections::HashMap, sync::Arc, time::Duration};

type Item = HashMap<String, AttributeValue>;

/// The most keys one BatchGetItem call takes.
const BATCH_GET_MAX: usize = 100;
/// Items one BatchWriteItem call takes.
const BATCH_WRITE_MAX: usize = 25;
/// Items one TransactWriteItems call takes.
const TRANSACTION_MAX: usize = 100;
/// Attempts of a batch call while DynamoDB leaves keys unprocessed (throttling), with doubling backoff.
const BATCH_ATTEMPTS: usize = 6;

/// How fresh a read must be. DynamoDB serves eventually consistent reads (half the price) from a replica that may
/// lag the last write; a strongly consistent read sees every write acknowledged before it. Secondary indexes are
/// always eventually consistent. docs/architecture.md lists each read of natter with its choice and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    Eventual,
    Strong,
}

/// The DynamoDB implementation of every store port.
#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    tables: Arc<Tables>,
    settings: Settings,
}

impl DynamoStore {
    /// Opens the client's connection (TLS on AWS) at init: a `BatchGetItem` naming no key, which DynamoDB refuses
    /// as invalid before reading anything or checking any permission (see `wiring::warm_up`; only the connection
    /// matters).
    pub(crate) async fn warm_up(&self) {
        let _refused = self
            .client
            .batch_get_item()
            .set_request_items(Some(HashMap::new()))
            .customize()
            .config_override(
                aws_sdk_dynamodb::config::Builder::default().retry_config(aws_config::retry::RetryConfig::disabled()),
            )
            .send()
            .await;
    }

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

    /// For tests and tools: the settings this store was built with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// BatchGetItem over any tables, retrying unprocessed keys with backoff; the items per table.
    async fn batch_get(&self, mut request: HashMap<String, KeysAndAttributes>) -> Res<HashMap<String, Vec<Item>>> {
        let mut out: HashMap<String, Vec<Item>> = HashMap::new();
        let mut backoff = Duration::from_millis(25);
        for attempt in 0..BATCH_ATTEMPTS {
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
                .map_err(failed("BatchGetItem"))?;
            for (table, items) in r.responses.unwrap_or_default() {
                out.entry(table).or_default().extend(items);
            }
            request = r.unprocessed_keys.unwrap_or_default();
        }
        Err(retryable(
            "BatchGetItem",
            "keys still unprocessed after retries (throttled)",
        ))
    }

    /// The items of one table under `keys` (any number: 100 a call), optionally projected.
    async fn get_many(&self, table: &str, keys: Vec<Item>, projection: Option<&[&str]>, read: Read) -> Res<Vec<Item>> {
        let mut out = Vec::new();
        for chunk in keys.chunks(BATCH_GET_MAX) {
            let request = keys_and_attributes(chunk.to_vec(), projection, read)?;
            let mut got = self.batch_get(HashMap::from([(table.to_owned(), request)])).await?;
            out.extend(got.remove(table).unwrap_or_default());
        }
        Ok(out)
    }

    /// BatchWriteItem puts into one table, 25 a call, retrying unprocessed items with backoff.
    async fn batch_put(&self, table: &str, items: Vec<Item>) -> Res<()> {
        for chunk in items.chunks(BATCH_WRITE_MAX) {
            let mut pending: Vec<WriteRequest> = chunk
                .iter()
                .map(|i| {
                    PutRequest::builder()
                        .set_item(Some(i.clone()))
                        .build()
                        .map(|p| WriteRequest::builder().put_request(p).build())
                        .map_err(|e| unbuildable("BatchWriteItem", e))
                })
                .collect::<Res<_>>()?;
            let mut backoff = Duration::from_millis(25);
            for attempt in 0..BATCH_ATTEMPTS {
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
                    .map_err(failed("BatchWriteItem"))?;
                pending = r
                    .unprocessed_items
                    .and_then(|mut u| u.remove(table))
                    .unwrap_or_default();
            }
            if !pending.is_empty() {
                return Err(retryable(
                    "BatchWriteItem",
                    "items still unprocessed after retries (throttled)",
                ));
            }
        }
        Ok(())
    }

    /// Runs a query to its last page, handing each page to `take`.
    async fn each_page(&self, query: QueryFluentBuilder, mut take: impl FnMut(QueryOutput) + Send) -> Res<()> {
        self.pages_while(query, |page| {
            take(page);
            true
        })
        .await
        .map(drop)
    }

    /// Runs a query page by page, handing each to `take`, until `take` answers `false` or the last page; whether
    /// pages were left unread.
    async fn pages_while(
        &self,
        query: QueryFluentBuilder,
        mut take: impl FnMut(QueryOutput) -> bool + Send,
    ) -> Res<bool> {
        let mut start = None;
        loop {
            let mut page = query
                .clone()
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(failed("Query"))?;
            start = page.last_evaluated_key.take();
            let go_on = take(page);
            if start.is_none() || !go_on {
                return Ok(start.is_some());
            }
        }
    }

    /// How many items every page of a `Select=COUNT` query counted.
    async fn count_all(&self, query: QueryFluentBuilder) -> Res<u64> {
        let mut count = 0;
        self.each_page(query, |page| count += page.count.max(0) as u64).await?;
        Ok(count)
    }

    /// Every page of a query.
    async fn query_all(&self, query: QueryFluentBuilder) -> Res<Vec<Item>> {
        let mut items = Vec::new();
        self.each_page(query, |page| items.extend(page.items.unwrap_or_default()))
            .await?;
        Ok(items)
    }

    /// The user ids that one attribute of a query's items holds (keys-only reads: member ids, friend ids).
    async fn query_user_ids(&self, query: QueryFluentBuilder, attribute: &str) -> Res<Vec<UserId>> {
        Ok(self
            .query_all(query)
            .await?
            .iter()
            .filter_map(|i| {
                i.get(attribute)
                    .and_then(|v| v.as_s().ok())
                    .and_then(|u| UserId::parse(u).ok())
            })
            .collect())
    }
}

impl DynamoStore {
    /// A transaction, read as committed or cancelled with each item's reason.
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Res<outcome::Committed> {
        outcome::committed(
            self.client
                .transact_write_items()
                .set_transact_items(Some(items))
                .send()
                .await,
        )
    }
}

/// A put of a transaction.
fn tx_put(p: PutBuilder) -> Res<TransactWriteItem> {
    let p = p.build().map_err(|e| unbuildable("TransactWriteItems", e))?;
    Ok(TransactWriteItem::builder().put(p).build())
}

/// An update of a transaction.
fn tx_update(u: UpdateBuilder) -> Res<TransactWriteItem> {
    let u = u.build().map_err(|e| unbuildable("TransactWriteItems", e))?;
    Ok(TransactWriteItem::builder().update(u).build())
}

/// A delete of a transaction.
fn tx_delete(d: DeleteBuilder) -> Res<TransactWriteItem> {
    let d = d.build().map_err(|e| unbuildable("TransactWriteItems", e))?;
    Ok(TransactWriteItem::builder().delete(d).build())
}

/// The keys (and projection) of one table in a BatchGetItem.
fn keys_and_attributes(keys: Vec<Item>, projection: Option<&[&str]>, read: Read) -> Res<KeysAndAttributes> {
    let mut b = KeysAndAttributes::builder()
        .set_keys(Some(keys))
        .consistent_read(read == Read::Strong);
    if let Some(attrs) = projection {
        let list: Vec<String> = attrs.iter().map(|a| format!("#{a}")).collect();
        b = b
            .projection_expression(list.join(", "))
            .set_expression_attribute_names(expr::names(attrs));
    }
    b.build().map_err(|e| unbuildable("BatchGetItem", e))
}
