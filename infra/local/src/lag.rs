//! Read lag, as DynamoDB has it: an eventually consistent read (GetItem, BatchGetItem, Query or Scan without
//! `ConsistentRead`), which every read of a global secondary index is, may see the table as it was a moment ago,
//! while strongly consistent reads (of a table or of a local secondary index), conditions and transactions see
//! the latest state. Emulators answer every read with
//! the latest write, so code that is wrong under lag passes there; with `--read-lag MS` natter-local is as strict as
//! DynamoDB.
//!
//! How: a second emulator (the replica) holds the same tables. Every table of the primary has a stream of new
//! images; a replicator per table follows it and applies each image to the replica `lag` after it saw it (a put of
//! the new image, or a delete of the keys), in stream order. Replaying images, not requests, means no condition is
//! evaluated twice. The emulator proxy sends eventual reads to the replica and everything else to the primary
//! (`proxy::Upstreams::replica`).

use crate::{
    emulator::{Emulator, EmulatorError, Kind, sdk_for},
    provision::{ProvisionError, create_tables},
    stack::TableSpec,
    streams::{Http, MAX_IDLE_POLL, ShardReader},
};
use serde_json::{Value, json};
use std::{collections::VecDeque, sync::mpsc, time::Duration};
use tokio::{sync::watch, task::JoinHandle, time::Instant};
use tracing::warn;

#[derive(Debug, thiserror::Error)]
pub enum LagError {
    #[error(transparent)]
    Emulator(#[from] EmulatorError),
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    #[error("the replica emulator thread died")]
    Thread,
}

/// The replica and its replicators; dropping it (or [`Replica::stop`]) stops both.
pub struct Replica {
    /// Where eventual reads go.
    pub endpoint: String,
    pub lag: Duration,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// Ends the thread that holds the replica emulator (its process dies with that thread).
    emulator: Option<mpsc::Sender<()>>,
}

impl Replica {
    /// Starts a replica emulator of `kind`, creates `tables` in it, and replicates each from the primary at
    /// `primary` (whose tables must have streams) `lag` behind.
    pub async fn start(
        kind: Kind,
        account: &str,
        primary: &str,
        tables: &[TableSpec],
        lag: Duration,
    ) -> Result<Self, LagError> {
        let (endpoint, emulator) = spawn_emulator(kind, account.to_owned()).await?;
        let dynamo = aws_sdk_dynamodb::Client::new(&sdk_for(&endpoint).await);
        create_tables(&dynamo, tables, false).await?;
        let (stop, stop_rx) = watch::channel(false);
        let http = Http::default();
        let tasks = tables
            .iter()
            .map(|t| {
                let follower = Follower {
                    http: http.clone(),
                    primary: primary.to_owned(),
                    replica: endpoint.clone(),
                    table: t.name.clone(),
                    lag,
                };
                tokio::spawn(follower.run(stop_rx.clone()))
            })
            .collect();
        Ok(Self {
            endpoint,
            lag,
            stop,
            tasks,
            emulator: Some(emulator),
        })
    }

    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        for t in std::mem::take(&mut self.tasks) {
            let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        if let Some(e) = self.emulator.take() {
            let _ = e.send(());
        }
    }
}

/// Starts the replica emulator on a thread of its own that holds it until told to stop (the emulator's
/// parent-death signal follows the thread that spawned it, so a short-lived thread would kill it early).
async fn spawn_emulator(kind: Kind, account: String) -> Result<(String, mpsc::Sender<()>), LagError> {
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    std::thread::spawn(move || match Emulator::start(kind, &account) {
        Ok(server) => {
            let _ = ready_tx.send(Ok(server.endpoint.clone()));
            let _ = stop_rx.recv();
            drop(server);
        }
        Err(e) => {
            let _ = ready_tx.send(Err(e));
        }
    });
    let endpoint = ready_rx.await.map_err(|_| LagError::Thread)??;
    Ok((endpoint, stop_tx))
}

/// Follows one table's stream and applies it to the replica, `lag` behind.
struct Follower {
    http: Http,
    primary: String,
    replica: String,
    table: String,
    lag: Duration,
}

/// A change seen on the stream, and when it may reach the replica.
struct Change {
    due: Instant,
    target: &'static str,
    body: Value,
}

impl Follower {
    async fn run(self, mut stop: watch::Receiver<bool>) {
        let Some(mut reader) =
            ShardReader::open_when_ready(self.http.clone(), &self.primary, &self.table, &mut stop).await
        else {
            return;
        };
        let mut pending: VecDeque<Change> = VecDeque::new();
        let mut idle = Duration::from_millis(20);
        loop {
            if *stop.borrow() {
                return;
            }
            let records = reader.read().await;
            let seen = Instant::now();
            let got = records.len();
            pending.extend(records.iter().filter_map(|r| self.change(r, seen + self.lag)));
            while pending.front().is_some_and(|c| c.due <= Instant::now()) {
                let c = pending.pop_front().unwrap_or_else(|| unreachable!());
                if let Err(e) = self.http.call(&self.replica, c.target, &c.body).await {
                    warn!(table = %self.table, error = %e, "could not apply a change to the replica");
                }
            }
            idle = if got > 0 {
                Duration::from_millis(20)
            } else {
                (idle * 2).min(MAX_IDLE_POLL)
            };
            let poll = Instant::now() + idle;
            let wake = pending.front().map(|c| c.due.min(poll)).unwrap_or(poll);
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// The replica write a stream record stands for.
    fn change(&self, record: &Value, due: Instant) -> Option<Change> {
        let data = &record["dynamodb"];
        match record["eventName"].as_str()? {
            "INSERT" | "MODIFY" => Some(Change {
                due,
                target: "DynamoDB_20120810.PutItem",
                body: json!({"TableName": self.table, "Item": data["NewImage"].clone()}),
            }),
            "REMOVE" => Some(Change {
                due,
                target: "DynamoDB_20120810.DeleteItem",
                body: json!({"TableName": self.table, "Key": data["Keys"].clone()}),
            }),
            _ => None,
        }
    }
}

/// Whether a DynamoDB request (its `X-Amz-Target` operation and JSON body) is a read that may see a lagging
/// replica: an eventually consistent GetItem, BatchGetItem, Query or Scan. A read of an index is strong only
/// with `ConsistentRead`, which DynamoDB allows on a local secondary index alone (a global one refuses it).
pub fn eventual(operation: &str, body: &Value) -> bool {
    let consistent = |v: &Value| v["ConsistentRead"].as_bool().unwrap_or(false);
    match operation {
        "GetItem" | "Query" | "Scan" => !consistent(body),
        "BatchGetItem" => body["RequestItems"]
            .as_object()
            .is_some_and(|tables| tables.values().all(|t| !consistent(t))),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::eventual;
    use serde_json::json;

    #[test]
    fn only_eventual_reads_and_index_queries_see_the_replica() {
        assert!(eventual("GetItem", &json!({"TableName": "t"})));
        assert!(!eventual("GetItem", &json!({"ConsistentRead": true})));
        assert!(eventual("Query", &json!({"IndexName": "Inbox"})), "a global index");
        assert!(
            !eventual("Query", &json!({"IndexName": "ByTime", "ConsistentRead": true})),
            "a local index, read strongly"
        );
        assert!(!eventual("Query", &json!({"ConsistentRead": true})));
        assert!(eventual("BatchGetItem", &json!({"RequestItems": {"a": {}, "b": {}}})));
        assert!(!eventual(
            "BatchGetItem",
            &json!({"RequestItems": {"a": {}, "b": {"ConsistentRead": true}}})
        ));
        for write in ["PutItem", "UpdateItem", "TransactWriteItems", "DeleteItem"] {
            assert!(!eventual(write, &json!({})), "{write}");
        }
    }
}
