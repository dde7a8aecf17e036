//! DynamoDB stream event sources as Lambda runs them: a poller follows the table's stream, keeps the records that
//! pass the mapping's filters (FilterCriteria; the others are never delivered, as on AWS, where they are not
//! billed either), gathers a batch (BatchSize, MaximumBatchingWindowInSeconds) and invokes the function with a
//! DynamoDB event. A stream is ordered: a batch is retried until it succeeds, and with ReportBatchItemFailures
//! the retry starts at the first failed record (those before it are done). After MaximumRetryAttempts the rest
//! of the batch is given up and reported to the OnFailure destination, as Lambda reports it (the batch's place in
//! the stream, not its records).

use crate::{
    runtime::Function,
    stack::Stack,
    streams::{Http, MAX_IDLE_POLL, ShardReader},
    template::{TemplateError, plain},
};
use serde_json::{Value, json};
use std::{collections::VecDeque, sync::Arc, time::Duration};
use tokio::{sync::watch, time::Instant};
use tracing::warn;

/// A DynamoDB stream event source mapping of the template.
#[derive(Debug, Clone)]
pub struct StreamSource {
    /// Logical id of the table whose stream it reads.
    pub table: String,
    pub batch_size: usize,
    pub window_secs: u64,
    pub report_failures: bool,
    /// Event filter patterns (FilterCriteria); a record passes if it matches any, or if there are none.
    pub filters: Vec<Value>,
    /// Retries of a failing batch before it is given up (-1: until its records expire, here never).
    pub max_retries: i64,
    /// Logical id of the queue a given-up batch is reported to (DestinationConfig.OnFailure).
    pub on_failure: Option<String>,
}

fn invalid(msg: String) -> TemplateError {
    TemplateError::Invalid(msg)
}

impl StreamSource {
    /// The mapping a `Type: DynamoDB` event of `function` declares with (resolved) properties `p`.
    pub fn of(stack: &Stack, function: &str, p: &Value) -> Result<Self, TemplateError> {
        let logical_id_of = |arn: &str, attribute: &str| {
            stack
                .names
                .attrs
                .iter()
                .find(|((_, a), v)| a == attribute && plain(v) == arn)
                .map(|((id, _), _)| id.clone())
        };
        let stream = plain(&p["Stream"]);
        let table = logical_id_of(&stream, "StreamArn")
            .ok_or_else(|| invalid(format!("{function}: stream {stream} is not a table's of this template")))?;
        let filters = p["FilterCriteria"]["Filters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| {
                let pattern: Value = serde_json::from_str(&plain(&f["Pattern"]))
                    .map_err(|e| invalid(format!("{function}: a filter pattern is not JSON: {e}")))?;
                check_pattern(&pattern).map_err(|e| invalid(format!("{function}: {e}")))?;
                Ok(pattern)
            })
            .collect::<Result<Vec<_>, TemplateError>>()?;
        let on_failure = match p["DestinationConfig"]["OnFailure"].get("Destination") {
            Some(d) => Some(
                logical_id_of(&plain(d), "Arn")
                    .ok_or_else(|| invalid(format!("{function}: OnFailure is not a queue of this template")))?,
            ),
            None => None,
        };
        let number = |key: &str, default: i64| p.get(key).map_or(default, |v| plain(v).parse().unwrap_or(default));
        Ok(Self {
            table,
            batch_size: number("BatchSize", 100).max(1) as usize,
            window_secs: number("MaximumBatchingWindowInSeconds", 0).max(0) as u64,
            report_failures: p["FunctionResponseTypes"]
                .as_array()
                .is_some_and(|a| a.iter().any(|t| t == "ReportBatchItemFailures")),
            filters,
            max_retries: number("MaximumRetryAttempts", -1),
            on_failure,
        })
    }

    /// Whether a stream record is delivered.
    pub fn passes(&self, record: &Value) -> bool {
        self.filters.is_empty() || self.filters.iter().any(|f| matches(f, record))
    }

    /// Of the records read from the stream `arn`, those delivered, as Lambda's event carries them.
    pub fn deliverable(&self, records: Vec<Value>, arn: &str, region: &str) -> Vec<Value> {
        records
            .into_iter()
            .filter(|r| self.passes(r))
            .map(|mut r| {
                r["eventSourceARN"] = json!(arn);
                r["awsRegion"] = json!(region);
                r
            })
            .collect()
    }
}

/// Only the filter rules natter-local evaluates (literals, `exists`, `prefix`): any other would be a filter AWS
/// applies and this would not, so it is refused when the template is read.
fn check_pattern(pattern: &Value) -> Result<(), String> {
    let Value::Object(fields) = pattern else {
        return Err(format!("a filter pattern must be an object: {pattern}"));
    };
    for (key, rule) in fields {
        match rule {
            Value::Object(_) => check_pattern(rule)?,
            Value::Array(options) => {
                for o in options {
                    if let Value::Object(op) = o
                        && !(op.len() == 1 && (op.contains_key("exists") || op.contains_key("prefix")))
                    {
                        return Err(format!("filter rule {o} of {key} is not evaluated locally"));
                    }
                }
            }
            _ => return Err(format!("filter rule of {key} must be an object or an array")),
        }
    }
    Ok(())
}

fn matches(pattern: &Value, value: &Value) -> bool {
    let Value::Object(fields) = pattern else { return false };
    fields.iter().all(|(key, rule)| match rule {
        Value::Object(_) => value.get(key).is_some_and(|v| matches(rule, v)),
        Value::Array(options) => options.iter().any(|o| matches_leaf(o, value.get(key))),
        _ => false,
    })
}

fn matches_leaf(option: &Value, value: Option<&Value>) -> bool {
    match option {
        Value::Object(op) => match (op.get("exists"), op.get("prefix")) {
            (Some(exists), _) => exists.as_bool() == Some(value.is_some()),
            (_, Some(prefix)) => value
                .and_then(Value::as_str)
                .zip(prefix.as_str())
                .is_some_and(|(v, p)| v.starts_with(p)),
            _ => false,
        },
        literal => value.is_some_and(|v| v == literal),
    }
}

/// Where the retry of a batch starts: the first record reported failed, or the whole batch if an identifier
/// matches none of its records (as Lambda does); `None` if the batch succeeded. Without ReportBatchItemFailures
/// an invocation that returned succeeded whatever it says.
fn retry_from(report_failures: bool, batch: &[Value], response: &Value) -> Option<usize> {
    if !report_failures {
        return None;
    }
    let failures = response["batchItemFailures"].as_array().filter(|f| !f.is_empty())?;
    failures
        .iter()
        .map(|f| {
            let id = f["itemIdentifier"].as_str().unwrap_or_default();
            batch
                .iter()
                .position(|r| r["dynamodb"]["SequenceNumber"] == id)
                .unwrap_or(0)
        })
        .min()
}

/// One mapping at work: the table's stream (read from the emulator itself) into the function.
pub struct Mapping {
    pub http: Http,
    /// The emulator that holds the table.
    pub endpoint: String,
    /// The table's name in the emulator.
    pub table: String,
    pub region: String,
    pub source: StreamSource,
    pub function: Arc<Function>,
    pub sqs: aws_sdk_sqs::Client,
    /// The OnFailure queue's URL.
    pub on_failure_url: Option<String>,
}

impl Mapping {
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let Some(mut reader) =
            ShardReader::open_when_ready(self.http.clone(), &self.endpoint, &self.table, &mut stop).await
        else {
            return;
        };
        let arn = reader.stream_arn().to_owned();
        let window = Duration::from_secs(self.source.window_secs);
        let mut buffer: VecDeque<Value> = VecDeque::new();
        let mut first_at: Option<Instant> = None;
        let mut idle = Duration::from_millis(20);
        loop {
            if *stop.borrow() {
                return;
            }
            let records = reader.read().await;
            let got = records.len();
            buffer.extend(self.source.deliverable(records, &arn, &self.region));
            if !buffer.is_empty() && first_at.is_none() {
                first_at = Some(Instant::now());
            }
            let full = buffer.len() >= self.source.batch_size;
            if full || first_at.is_some_and(|t| t.elapsed() >= window) {
                let n = buffer.len().min(self.source.batch_size);
                let batch: Vec<Value> = buffer.drain(..n).collect();
                if !self.deliver(batch, &arn, &mut stop).await {
                    return;
                }
                first_at = (!buffer.is_empty()).then(Instant::now);
                continue;
            }
            idle = if got > 0 {
                Duration::from_millis(20)
            } else {
                (idle * 2).min(MAX_IDLE_POLL)
            };
            let mut wake = Instant::now() + idle;
            if let Some(t) = first_at {
                wake = wake.min(t + window);
            }
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// Invokes the function with `batch` until it succeeds or is given up; false if told to stop meanwhile.
    async fn deliver(&self, mut batch: Vec<Value>, arn: &str, stop: &mut watch::Receiver<bool>) -> bool {
        let mut attempts: i64 = 0;
        loop {
            let failed_from = match self.function.invoke(&json!({ "Records": batch })).await {
                Ok(response) => match retry_from(self.source.report_failures, &batch, &response) {
                    Some(i) => i,
                    None => return true,
                },
                Err(e) => {
                    warn!(function = self.function.logical_id(), error = %e, "stream batch failed; retrying it");
                    0
                }
            };
            batch.drain(..failed_from);
            attempts += 1;
            if self.source.max_retries >= 0 && attempts > self.source.max_retries {
                self.give_up(&batch, arn).await;
                return true;
            }
            let pause = Duration::from_millis(100 * (1 << attempts.min(5)));
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.changed() => return false,
            }
        }
    }

    async fn give_up(&self, batch: &[Value], arn: &str) {
        let sequence = |r: Option<&Value>| r.map(|r| r["dynamodb"]["SequenceNumber"].clone()).unwrap_or_default();
        let report = json!({
            "requestContext": {
                "condition": "RetryAttemptsExhausted",
                "functionArn": self.function.logical_id(),
            },
            "DDBStreamBatchInfo": {
                "streamArn": arn,
                "batchSize": batch.len(),
                "startSequenceNumber": sequence(batch.first()),
                "endSequenceNumber": sequence(batch.last()),
            },
        });
        warn!(
            function = self.function.logical_id(),
            records = batch.len(),
            "stream batch given up"
        );
        if let Some(url) = &self.on_failure_url {
            let sent = self
                .sqs
                .send_message()
                .queue_url(url)
                .message_body(report.to_string())
                .send()
                .await;
            if let Err(e) = sent {
                warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(e), "the given-up batch was not reported");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_starts_at_the_first_failed_record_or_the_whole_batch_if_it_names_none() {
        let batch: Vec<Value> = ["1", "2", "3"]
            .iter()
            .map(|n| json!({"dynamodb": {"SequenceNumber": n}}))
            .collect();
        let failed = |ids: &[&str]| json!({"batchItemFailures": ids.iter().map(|i| json!({"itemIdentifier": i})).collect::<Vec<_>>()});
        assert_eq!(retry_from(true, &batch, &json!({"batchItemFailures": []})), None);
        assert_eq!(retry_from(true, &batch, &Value::Null), None);
        assert_eq!(retry_from(true, &batch, &failed(&["3", "2"])), Some(1));
        assert_eq!(retry_from(true, &batch, &failed(&["9"])), Some(0), "unknown: all of it");
        assert_eq!(retry_from(false, &batch, &failed(&["2"])), None);
    }

    fn source(filters: Vec<Value>) -> StreamSource {
        StreamSource {
            table: "T".into(),
            batch_size: 10,
            window_secs: 0,
            report_failures: true,
            filters,
            max_retries: 1,
            on_failure: None,
        }
    }

    #[test]
    fn filters_pass_what_matches_and_refuse_rules_they_cannot_evaluate() {
        let inserts_to_someone = source(vec![json!({
            "eventName": ["INSERT"],
            "dynamodb": {"NewImage": {"recipient": {"S": [{"exists": true}]}}}
        })]);
        let insert = |image: Value| json!({"eventName": "INSERT", "dynamodb": {"NewImage": image}});
        assert!(inserts_to_someone.passes(&insert(json!({"recipient": {"S": "bob"}}))));
        assert!(!inserts_to_someone.passes(&insert(json!({"group_id": {"S": "g"}}))));
        let modify = json!({"eventName": "MODIFY", "dynamodb": {"NewImage": {"recipient": {"S": "bob"}}}});
        assert!(!inserts_to_someone.passes(&modify));
        assert!(source(vec![]).passes(&modify), "no filter: everything");
        let prefix = source(vec![json!({"dynamodb": {"Keys": {"k": {"S": [{"prefix": "a#"}]}}}})]);
        assert!(prefix.passes(&json!({"dynamodb": {"Keys": {"k": {"S": "a#1"}}}})));
        assert!(!prefix.passes(&json!({"dynamodb": {"Keys": {"k": {"S": "b#1"}}}})));
        assert!(check_pattern(&json!({"a": [{"numeric": [">", 1]}]})).is_err());
        assert!(check_pattern(&json!({"a": [{"anything-but": "x"}]})).is_err());
        assert!(check_pattern(&json!({"a": ["x", {"exists": false}]})).is_ok());
    }
}
