//! Reading a table's DynamoDB stream through the emulator's streams API, as raw JSON (emulators check no
//! signature; a credential names the account and region). Shared by the read-lag replicator (`lag`) and the
//! DynamoDB event sources (`stream_source`).

use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use serde_json::{Value, json};
use std::{collections::HashMap, time::Duration};
use tokio::{sync::watch, time::Instant};
use tracing::warn;

/// Raw JSON calls to an emulator.
#[derive(Clone)]
pub struct Http(Client<hyper_util::client::legacy::connect::HttpConnector, Full<axum::body::Bytes>>);

impl Default for Http {
    fn default() -> Self {
        Self(Client::builder(TokioExecutor::new()).build_http())
    }
}

impl Http {
    pub async fn call(&self, endpoint: &str, target: &str, body: &Value) -> Result<Value, String> {
        let request = http::Request::post(endpoint)
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", target)
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
            )
            .body(Full::new(body.to_string().into()))
            .map_err(|e| e.to_string())?;
        // A call that hangs must not stop a reader: it is given up and the next one goes on.
        let response = tokio::time::timeout(Duration::from_secs(2), self.0.request(request))
            .await
            .map_err(|_| format!("{target}: no answer within 2 s"))?
            .map_err(|e| e.to_string())?;
        let ok = response.status().is_success();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if ok { Ok(v) } else { Err(format!("{target}: {v}")) }
    }
}

/// The longest pause between two reads of an idle stream: polling backs off while a table is idle (a dozen
/// tables polled every 20 ms would be a load of their own on a slow emulator) and comes back at once when
/// records flow, so a change is seen at most this late.
pub const MAX_IDLE_POLL: Duration = Duration::from_millis(160);

/// Follows every shard of one table's stream from its start (TRIM_HORIZON: the tables are created with it).
pub struct ShardReader {
    http: Http,
    endpoint: String,
    table: String,
    stream: String,
    shards: HashMap<String, Shard>,
    next_describe: Instant,
}

/// Where the reader is in one shard.
#[derive(Default)]
struct Shard {
    /// The next read's iterator; `None` until one is asked for, after a failed read, or once the shard is closed.
    iterator: Option<String>,
    /// The last record read: a failed read resumes after it, so nothing is read twice or skipped.
    last: Option<String>,
    closed: bool,
}

impl ShardReader {
    /// A reader of `table`'s stream at `endpoint`; an error if the table has no stream (yet).
    pub async fn open(http: Http, endpoint: &str, table: &str) -> Result<Self, String> {
        let d = http
            .call(
                endpoint,
                "DynamoDB_20120810.DescribeTable",
                &json!({"TableName": table}),
            )
            .await?;
        let stream = d["Table"]["LatestStreamArn"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("{table} has no stream"))?;
        Ok(Self {
            http,
            endpoint: endpoint.to_owned(),
            table: table.to_owned(),
            stream,
            shards: HashMap::new(),
            next_describe: Instant::now(),
        })
    }

    /// A reader of `table`'s stream once it has one (a table may still be being created), or `None` if `stop`
    /// is set first.
    pub async fn open_when_ready(
        http: Http,
        endpoint: &str,
        table: &str,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<Self> {
        loop {
            match Self::open(http.clone(), endpoint, table).await {
                Ok(reader) => return Some(reader),
                Err(e) => {
                    warn!(table, error = %e, "no stream yet; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                        _ = stop.changed() => return None,
                    }
                }
            }
        }
    }

    pub fn stream_arn(&self) -> &str {
        &self.stream
    }

    /// Whether it has found a shard to follow.
    pub fn following(&self) -> bool {
        !self.shards.is_empty()
    }

    /// One read of every shard: the records that arrived since the last read, in stream order within a shard.
    pub async fn read(&mut self) -> Vec<Value> {
        // New shards appear as a stream grows (emulators mostly keep one), and a shard whose read failed needs
        // a new iterator.
        if Instant::now() >= self.next_describe {
            self.next_describe = Instant::now() + Duration::from_secs(2);
            if let Err(e) = self.open_shards().await {
                warn!(table = %self.table, error = %e, "could not describe the stream");
            }
        }
        let mut records = Vec::new();
        for shard in self.shards.values_mut() {
            let Some(it) = shard.iterator.take() else { continue };
            let body = json!({"ShardIterator": it, "Limit": 1000});
            match self
                .http
                .call(&self.endpoint, "DynamoDBStreams_20120810.GetRecords", &body)
                .await
            {
                Ok(mut r) => {
                    if let Value::Array(got) = r["Records"].take() {
                        if let Some(n) = got.last().and_then(|l| l["dynamodb"]["SequenceNumber"].as_str()) {
                            shard.last = Some(n.to_owned());
                        }
                        records.extend(got);
                    }
                    shard.iterator = r["NextShardIterator"].as_str().map(str::to_owned);
                    shard.closed = shard.iterator.is_none();
                }
                Err(e) => {
                    warn!(table = %self.table, error = %e, "stream read failed; resuming the shard after its last record");
                    self.next_describe = Instant::now();
                }
            }
        }
        records
    }

    /// Iterators for the shards that have none: a new shard from its start, one whose read failed after its last
    /// record.
    async fn open_shards(&mut self) -> Result<(), String> {
        let d = self
            .http
            .call(
                &self.endpoint,
                "DynamoDBStreams_20120810.DescribeStream",
                &json!({"StreamArn": self.stream}),
            )
            .await?;
        for described in d["StreamDescription"]["Shards"].as_array().into_iter().flatten() {
            let Some(id) = described["ShardId"].as_str() else {
                continue;
            };
            let shard = self.shards.entry(id.to_owned()).or_default();
            if shard.iterator.is_some() || shard.closed {
                continue;
            }
            let mut ask = json!({"StreamArn": self.stream, "ShardId": id, "ShardIteratorType": "TRIM_HORIZON"});
            if let Some(n) = &shard.last {
                ask["ShardIteratorType"] = "AFTER_SEQUENCE_NUMBER".into();
                ask["SequenceNumber"] = n.clone().into();
            }
            let it = self
                .http
                .call(&self.endpoint, "DynamoDBStreams_20120810.GetShardIterator", &ask)
                .await?;
            shard.iterator = it["ShardIterator"].as_str().map(str::to_owned);
        }
        Ok(())
    }
}
