//! AWS-call accounting: every DynamoDB, SQS and @connections call a function makes is counted, DynamoDB is asked
//! for the capacity it consumed (`ReturnConsumedCapacity=TOTAL`, set on every request by the interceptor), and the
//! time during which at least one call was in flight is measured. At the end of each invocation the counts are
//! written as one CloudWatch Embedded Metric Format line, so the same numbers appear in CloudWatch on AWS and in
//! natter-local's `/_natter/stats` locally.
//!
//! The counters are per process: Lambda (and natter-local) give a process one invocation at a time.

use aws_sdk_dynamodb::{
    operation::{
        batch_get_item::{BatchGetItemInput, BatchGetItemOutput},
        batch_write_item::{BatchWriteItemInput, BatchWriteItemOutput},
        delete_item::{DeleteItemInput, DeleteItemOutput},
        get_item::{GetItemInput, GetItemOutput},
        put_item::{PutItemInput, PutItemOutput},
        query::{QueryInput, QueryOutput},
        transact_write_items::{TransactWriteItemsInput, TransactWriteItemsOutput},
        update_item::{UpdateItemInput, UpdateItemOutput},
    },
    types::{ConsumedCapacity, ReturnConsumedCapacity},
};
use aws_smithy_runtime_api::{
    box_error::BoxError,
    client::{
        interceptors::{
            Intercept,
            context::{
                BeforeSerializationInterceptorContextMut, BeforeSerializationInterceptorContextRef,
                FinalizerInterceptorContextRef,
            },
        },
        orchestrator::Metadata,
        runtime_components::RuntimeComponents,
    },
};
use aws_smithy_types::config_bag::ConfigBag;
use serde_json::{Map, Value, json};
use std::{
    collections::BTreeMap,
    sync::Mutex,
    time::{Duration, Instant},
};

#[derive(Default)]
struct Counters {
    calls: BTreeMap<String, u64>,
    read_units: f64,
    write_units: f64,
    model_read_units: f64,
    model_write_units: f64,
    in_flight: usize,
    busy_since: Option<Instant>,
    busy: Duration,
    kind: Option<String>,
}

static COUNTERS: Mutex<Option<Counters>> = Mutex::new(None);

fn with<T>(f: impl FnOnce(&mut Counters) -> T) -> T {
    let mut guard = COUNTERS.lock().unwrap_or_else(|e| e.into_inner());
    f(guard.get_or_insert_with(Counters::default))
}

/// Names the kind of work this invocation does (e.g. `send.group`), for the per-kind accounting.
pub fn set_kind(kind: &str) {
    with(|c| c.kind = Some(kind.to_owned()));
}

/// Starts an invocation's accounting.
pub fn begin() -> Instant {
    with(|c| *c = Counters::default());
    Instant::now()
}

/// Ends an invocation: writes its EMF line (to stdout, where Lambda sends it to CloudWatch) and returns it.
pub fn finish(started: Instant, default_kind: &str, records: usize) -> String {
    let elapsed = started.elapsed();
    let line = with(|c| {
        if let Some(since) = c.busy_since.take() {
            c.busy += since.elapsed();
        }
        let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "unknown".into());
        let kind = c.kind.clone().unwrap_or_else(|| default_kind.to_owned());
        let mut root = Map::new();
        let mut metrics = vec![
            json!({"Name": "Invocations", "Unit": "Count"}),
            json!({"Name": "Records", "Unit": "Count"}),
            json!({"Name": "DurationMs", "Unit": "Milliseconds"}),
            json!({"Name": "AwsBusyMs", "Unit": "Milliseconds"}),
            json!({"Name": "ReadUnits", "Unit": "Count"}),
            json!({"Name": "WriteUnits", "Unit": "Count"}),
            json!({"Name": "ModelReadUnits", "Unit": "Count"}),
            json!({"Name": "ModelWriteUnits", "Unit": "Count"}),
        ];
        root.insert("Function".into(), function.into());
        root.insert("Kind".into(), kind.into());
        root.insert("Invocations".into(), 1.into());
        root.insert("Records".into(), records.into());
        root.insert("DurationMs".into(), json!(elapsed.as_secs_f64() * 1000.0));
        root.insert("AwsBusyMs".into(), json!(c.busy.as_secs_f64() * 1000.0));
        root.insert("ReadUnits".into(), json!(c.read_units));
        root.insert("WriteUnits".into(), json!(c.write_units));
        root.insert("ModelReadUnits".into(), json!(c.model_read_units));
        root.insert("ModelWriteUnits".into(), json!(c.model_write_units));
        for (name, n) in &c.calls {
            let metric = format!("Calls.{name}");
            metrics.push(json!({"Name": metric, "Unit": "Count"}));
            root.insert(metric, (*n).into());
        }
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": crate::now_ms(),
                "CloudWatchMetrics": [{"Namespace": "natter", "Dimensions": [["Function", "Kind"]], "Metrics": metrics}],
            }),
        );
        Value::Object(root).to_string()
    });
    println!("{line}");
    line
}

fn add_capacity(c: &mut Counters, op: &str, capacity: &[ConsumedCapacity]) {
    let units: f64 = capacity.iter().filter_map(|c| c.capacity_units()).sum();
    let read = matches!(op, "GetItem" | "BatchGetItem" | "Query" | "Scan");
    if read {
        c.read_units += units
    } else {
        c.write_units += units
    }
}

/// The interceptor that counts. Add it to every client (see `aws::AwsApp::from_config`); DynamoDB clients get
/// natter's index schema for the modelled capacity.
#[derive(Debug, Default)]
pub struct Accounting {
    schema: crate::aws::capacity::Schema,
}

impl Accounting {
    pub fn new(schema: crate::aws::capacity::Schema) -> Self {
        Self { schema }
    }
}

/// The modelled units of a request in flight, kept in its operation's config bag until it completes.
#[derive(Debug, Clone, Copy)]
struct Modelled(f64, f64);

impl aws_smithy_types::config_bag::Storable for Modelled {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

fn operation(cfg: &ConfigBag) -> (String, String) {
    cfg.load::<Metadata>()
        .map(|m| (m.service().to_owned(), m.name().to_owned()))
        .unwrap_or_default()
}

impl Intercept for Accounting {
    fn name(&self) -> &'static str {
        "natter-accounting"
    }

    // Client interceptors see this hook before the operation's configuration (and so its name) is applied: it only
    // starts the busy clock; the call is counted in `modify_before_serialization`, once per execution.
    fn read_before_execution(
        &self,
        _: &BeforeSerializationInterceptorContextRef<'_>,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        with(|c| {
            if c.in_flight == 0 {
                c.busy_since = Some(Instant::now());
            }
            c.in_flight += 1;
        });
        Ok(())
    }

    fn modify_before_serialization(
        &self,
        context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, op) = operation(cfg);
        with(|c| *c.calls.entry(format!("{service}.{op}")).or_default() += 1);
        let (read, write) = crate::aws::capacity::request_units(&self.schema, context.input());
        cfg.interceptor_state().store_put(Modelled(read, write));
        // Every DynamoDB request reports the capacity it consumed: free, and what the cost model rests on.
        let input = context.input_mut();
        let total = Some(ReturnConsumedCapacity::Total);
        macro_rules! ask {
            ($($t:ty),*) => {
                $(if let Some(i) = input.downcast_mut::<$t>() { i.return_consumed_capacity = total.clone(); })*
            };
        }
        ask!(
            GetItemInput,
            PutItemInput,
            UpdateItemInput,
            DeleteItemInput,
            QueryInput,
            BatchGetItemInput,
            BatchWriteItemInput,
            TransactWriteItemsInput
        );
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (_, op) = operation(cfg);
        let output = context.output_or_error().and_then(|r| r.ok());
        let modelled = cfg.load::<Modelled>().copied();
        with(|c| {
            // Failed conditional writes and cancelled transactions are billed too: count the model either way.
            if let Some(Modelled(r, w)) = modelled {
                c.model_read_units += r;
                c.model_write_units += w;
            }
            if let Some(q) = output.and_then(|o| o.downcast_ref::<QueryOutput>()) {
                c.model_read_units += crate::aws::capacity::query_units(q, false);
            }
            if let Some(out) = output {
                macro_rules! one {
                    ($($t:ty),*) => {
                        $(if let Some(o) = out.downcast_ref::<$t>() { if let Some(cc) = o.consumed_capacity() { add_capacity(c, &op, std::slice::from_ref(cc)); } })*
                    };
                }
                macro_rules! many {
                    ($($t:ty),*) => {
                        $(if let Some(o) = out.downcast_ref::<$t>() { add_capacity(c, &op, o.consumed_capacity()); })*
                    };
                }
                one!(
                    GetItemOutput,
                    PutItemOutput,
                    UpdateItemOutput,
                    DeleteItemOutput,
                    QueryOutput
                );
                many!(BatchGetItemOutput, BatchWriteItemOutput, TransactWriteItemsOutput);
            }
            c.in_flight = c.in_flight.saturating_sub(1);
            if c.in_flight == 0
                && let Some(since) = c.busy_since.take()
            {
                c.busy += since.elapsed();
            }
        });
        Ok(())
    }
}

/// One EMF line, parsed: what natter-local and natter-loadgen sum.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sample {
    pub function: String,
    pub kind: String,
    pub invocations: u64,
    pub records: u64,
    pub duration_ms: f64,
    pub aws_busy_ms: f64,
    pub read_units: f64,
    pub write_units: f64,
    #[serde(default)]
    pub model_read_units: f64,
    #[serde(default)]
    pub model_write_units: f64,
    pub calls: BTreeMap<String, u64>,
}

impl Sample {
    /// Parses an EMF line written by [`finish`]; `None` for any other line.
    pub fn parse(line: &str) -> Option<Sample> {
        if !line.starts_with('{') || !line.contains("\"_aws\"") {
            return None;
        }
        let v: Value = serde_json::from_str(line).ok()?;
        let num = |k: &str| v.get(k).and_then(Value::as_f64).unwrap_or(0.0);
        let calls = v
            .as_object()?
            .iter()
            .filter_map(|(k, n)| Some((k.strip_prefix("Calls.")?.to_owned(), n.as_u64()?)))
            .collect();
        Some(Sample {
            function: v.get("Function")?.as_str()?.to_owned(),
            kind: v.get("Kind")?.as_str()?.to_owned(),
            invocations: num("Invocations") as u64,
            records: num("Records") as u64,
            duration_ms: num("DurationMs"),
            aws_busy_ms: num("AwsBusyMs"),
            read_units: num("ReadUnits"),
            write_units: num("WriteUnits"),
            model_read_units: num("ModelReadUnits"),
            model_write_units: num("ModelWriteUnits"),
            calls,
        })
    }

    /// Adds another sample of the same function and kind.
    pub fn add(&mut self, other: &Sample) {
        self.invocations += other.invocations;
        self.records += other.records;
        self.duration_ms += other.duration_ms;
        self.aws_busy_ms += other.aws_busy_ms;
        self.read_units += other.read_units;
        self.write_units += other.write_units;
        self.model_read_units += other.model_read_units;
        self.model_write_units += other.model_write_units;
        for (k, n) in &other.calls {
            *self.calls.entry(k.clone()).or_default() += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emf_line_round_trips_into_a_sample() {
        let started = begin();
        set_kind("send.direct");
        with(|c| {
            c.calls.insert("DynamoDB.PutItem".into(), 2);
            c.write_units = 2.0;
        });
        let line = finish(started, "send", 1);
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], "natter");
        let s = Sample::parse(&line).unwrap();
        assert_eq!(
            (s.kind.as_str(), s.invocations, s.calls["DynamoDB.PutItem"]),
            ("send.direct", 1, 2)
        );
        assert_eq!(s.write_units, 2.0);
        assert!(Sample::parse("INFO not a metric").is_none());
    }
}
