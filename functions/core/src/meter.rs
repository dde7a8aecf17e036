//! Per-invocation accounting: the AWS calls an invocation made, the capacity DynamoDB reported and the capacity
//! natter's model expects, and the time during which at least one call was in flight. At the end of each
//! invocation the counts are written as one CloudWatch Embedded Metric Format (EMF) line, so the same numbers
//! appear in CloudWatch on AWS and in natter-local's `/_natter/stats` locally ([`Sample::parse`] reads them back).
//!
//! A [`Meter`] belongs to one function's `App`; the SDK interceptor (`aws::accounting`) feeds the same meter.
//! Lambda (and natter-local) give a process one invocation at a time, so one set of counters per process is exact.
//! This module needs no AWS SDK: natter-local and natter-loadgen read samples without it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
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
    /// The longest chain among the calls that have ended, each of which started after the one before it ended:
    /// the sequential round trips the invocation waited for (calls made together count once).
    round_trips: u32,
    kind: Option<String>,
    /// Error frames answered, by code (`unavailable`, `internal`, ...).
    error_frames: BTreeMap<String, u64>,
    /// AWS call attempts refused with throttling (the SDK retries them; a persistent one becomes `unavailable`).
    throttled: u64,
}

/// The counters of one function's invocations, shared by the Lambda glue and the SDK interceptors.
#[derive(Clone)]
pub struct Meter {
    function: Arc<str>,
    counters: Arc<Mutex<Counters>>,
}

impl Default for Meter {
    fn default() -> Self {
        Self::new("unknown")
    }
}

impl Meter {
    /// A meter for the function named `function` (the `Function` dimension of its metrics).
    pub fn new(function: &str) -> Self {
        Self {
            function: function.into(),
            counters: Arc::default(),
        }
    }

    /// A meter named after the running Lambda function (`AWS_LAMBDA_FUNCTION_NAME`).
    pub fn for_this_function() -> Self {
        Self::new(&std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "unknown".into()))
    }

    fn with<T>(&self, f: impl FnOnce(&mut Counters) -> T) -> T {
        f(&mut self.counters.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Starts an invocation's accounting.
    pub fn begin(&self) -> Instant {
        self.with(|c| *c = Counters::default());
        Instant::now()
    }

    /// Names the kind of work this invocation does (e.g. `send.group`), for the per-kind accounting.
    pub fn set_kind(&self, kind: &str) {
        self.with(|c| c.kind = Some(kind.to_owned()));
    }

    /// A call went out: the busy clock runs while any call is in flight.
    pub fn call_started(&self) {
        self.with(|c| {
            if c.in_flight == 0 {
                c.busy_since = Some(Instant::now());
            }
            c.in_flight += 1;
        });
    }

    /// Counts one call of `operation` (`DynamoDB.PutItem`), once per execution (not per SDK retry attempt), and
    /// returns its place in the longest chain of calls so far (pass it to [`Meter::call_ended`]): one more than
    /// the longest chain that had ended when it started.
    pub fn count_call(&self, operation: String) -> u32 {
        self.with(|c| {
            *c.calls.entry(operation).or_default() += 1;
            c.round_trips + 1
        })
    }

    /// A call ended, with its place in the chain of calls (from [`Meter::count_call`]), the capacity the model
    /// expects and the capacity DynamoDB reported (read, write).
    pub fn call_ended(&self, depth: u32, modelled: (f64, f64), consumed: (f64, f64)) {
        self.with(|c| {
            c.round_trips = c.round_trips.max(depth);
            c.model_read_units += modelled.0;
            c.model_write_units += modelled.1;
            c.read_units += consumed.0;
            c.write_units += consumed.1;
            c.in_flight = c.in_flight.saturating_sub(1);
            if c.in_flight == 0
                && let Some(since) = c.busy_since.take()
            {
                c.busy += since.elapsed();
            }
        });
    }

    /// Counts an error frame the invocation answered.
    pub fn count_error_frame(&self, code: &str) {
        self.with(|c| *c.error_frames.entry(code.to_owned()).or_default() += 1);
    }

    /// Counts an AWS call attempt refused with throttling.
    pub fn count_throttled(&self) {
        self.with(|c| c.throttled += 1);
    }

    /// Ends an invocation: writes its EMF line (to stdout, where Lambda sends it to CloudWatch) and returns it.
    pub fn finish(&self, started: Instant, default_kind: &str, records: usize) -> String {
        let sample = self.with(|c| {
            if let Some(since) = c.busy_since.take() {
                c.busy += since.elapsed();
            }
            Sample {
                function: self.function.to_string(),
                kind: c.kind.clone().unwrap_or_else(|| default_kind.to_owned()),
                invocations: 1,
                records: records as u64,
                duration_ms: started.elapsed().as_secs_f64() * 1000.0,
                aws_busy_ms: c.busy.as_secs_f64() * 1000.0,
                round_trips: u64::from(c.round_trips),
                read_units: c.read_units,
                write_units: c.write_units,
                model_read_units: c.model_read_units,
                model_write_units: c.model_write_units,
                calls: std::mem::take(&mut c.calls),
                error_frames: std::mem::take(&mut c.error_frames),
                throttled: c.throttled,
            }
        });
        let line = sample.to_emf();
        println!("{line}");
        line
    }
}

/// One invocation's numbers (or the sum of several): what an EMF line carries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    /// Error frames by code.
    #[serde(default)]
    pub error_frames: BTreeMap<String, u64>,
    /// AWS call attempts refused with throttling.
    #[serde(default)]
    pub throttled: u64,
    /// Sequential AWS round trips (see [`Meter::count_call`]), summed over the invocations.
    #[serde(default)]
    pub round_trips: u64,
}

/// The plain metrics of an EMF line, in the order they are declared.
const METRICS: [(&str, &str); 9] = [
    ("Invocations", "Count"),
    ("Records", "Count"),
    ("DurationMs", "Milliseconds"),
    ("AwsBusyMs", "Milliseconds"),
    ("ReadUnits", "Count"),
    ("WriteUnits", "Count"),
    ("ModelReadUnits", "Count"),
    ("ModelWriteUnits", "Count"),
    ("RoundTrips", "Count"),
];

impl Sample {
    /// The EMF line: dimensions Function and Kind, namespace `natter`, one metric per number and per call.
    pub fn to_emf(&self) -> String {
        let mut root = Map::new();
        let mut metrics: Vec<Value> = METRICS
            .iter()
            .map(|(name, unit)| json!({"Name": name, "Unit": unit}))
            .collect();
        root.insert("Function".into(), self.function.clone().into());
        root.insert("Kind".into(), self.kind.clone().into());
        let values = [
            json!(self.invocations),
            json!(self.records),
            json!(self.duration_ms),
            json!(self.aws_busy_ms),
            json!(self.read_units),
            json!(self.write_units),
            json!(self.model_read_units),
            json!(self.model_write_units),
            json!(self.round_trips),
        ];
        for ((name, _), v) in METRICS.iter().zip(values) {
            root.insert((*name).into(), v);
        }
        for (name, n) in &self.calls {
            let metric = format!("Calls.{name}");
            metrics.push(json!({"Name": metric, "Unit": "Count"}));
            root.insert(metric, (*n).into());
        }
        // What the alarms watch is also published without dimensions: one metric for the whole deployment.
        let mut totals = vec![json!({"Name": "Throttled", "Unit": "Count"})];
        root.insert("Throttled".into(), self.throttled.into());
        for (code, n) in &self.error_frames {
            let metric = format!("ErrorFrames.{code}");
            totals.push(json!({"Name": metric, "Unit": "Count"}));
            root.insert(metric, (*n).into());
        }
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": crate::now_ms(),
                "CloudWatchMetrics": [
                    {"Namespace": "natter", "Dimensions": [["Function", "Kind"]], "Metrics": metrics},
                    {"Namespace": "natter", "Dimensions": [[]], "Metrics": totals},
                ],
            }),
        );
        Value::Object(root).to_string()
    }

    /// Parses an EMF line written by [`Meter::finish`]; `None` for any other line.
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
            error_frames: v
                .as_object()?
                .iter()
                .filter_map(|(k, n)| Some((k.strip_prefix("ErrorFrames.")?.to_owned(), n.as_u64()?)))
                .collect(),
            throttled: num("Throttled") as u64,
            round_trips: num("RoundTrips") as u64,
        })
    }

    /// What happened between `before` and this sample of the same function and kind (both sums since start):
    /// how natter-loadgen isolates one run from the stats of a natter-local that served others.
    pub fn since(&self, before: &Sample) -> Sample {
        Sample {
            function: self.function.clone(),
            kind: self.kind.clone(),
            invocations: self.invocations.saturating_sub(before.invocations),
            records: self.records.saturating_sub(before.records),
            duration_ms: self.duration_ms - before.duration_ms,
            aws_busy_ms: self.aws_busy_ms - before.aws_busy_ms,
            read_units: self.read_units - before.read_units,
            write_units: self.write_units - before.write_units,
            model_read_units: self.model_read_units - before.model_read_units,
            model_write_units: self.model_write_units - before.model_write_units,
            calls: self
                .calls
                .iter()
                .filter_map(|(op, n)| {
                    let delta = n.saturating_sub(before.calls.get(op).copied().unwrap_or(0));
                    (delta > 0).then(|| (op.clone(), delta))
                })
                .collect(),
            error_frames: self
                .error_frames
                .iter()
                .filter_map(|(code, n)| {
                    let delta = n.saturating_sub(before.error_frames.get(code).copied().unwrap_or(0));
                    (delta > 0).then(|| (code.clone(), delta))
                })
                .collect(),
            throttled: self.throttled.saturating_sub(before.throttled),
            round_trips: self.round_trips.saturating_sub(before.round_trips),
        }
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
        for (k, n) in &other.error_frames {
            *self.error_frames.entry(k.clone()).or_default() += n;
        }
        self.throttled += other.throttled;
        self.round_trips += other.round_trips;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emf_line_round_trips_into_a_sample() {
        let meter = Meter::new("natter-send");
        let started = meter.begin();
        meter.set_kind("send.direct");
        meter.call_started();
        let depth = meter.count_call("DynamoDB.PutItem".into());
        meter.count_call("DynamoDB.PutItem".into());
        meter.call_ended(depth, (0.0, 2.0), (0.0, 2.0));
        meter.count_error_frame("unavailable");
        meter.count_throttled();
        let line = meter.finish(started, "send", 1);
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], "natter");
        let s = Sample::parse(&line).unwrap();
        assert_eq!(
            (
                s.function.as_str(),
                s.kind.as_str(),
                s.invocations,
                s.calls["DynamoDB.PutItem"]
            ),
            ("natter-send", "send.direct", 1, 2)
        );
        assert_eq!((s.write_units, s.model_write_units), (2.0, 2.0));
        assert_eq!((s.error_frames["unavailable"], s.throttled), (1, 1));
        let totals = &v["_aws"]["CloudWatchMetrics"][1];
        assert_eq!(totals["Dimensions"], json!([[]]), "alarm metrics have no dimensions");
        assert_eq!(v["ErrorFrames.unavailable"], 1);
        assert!(Sample::parse("INFO not a metric").is_none());
    }

    #[test]
    fn calls_made_together_are_one_round_trip_and_calls_made_after_are_more() {
        let meter = Meter::default();
        let started = meter.begin();
        // Two calls together, then one after both ended, then two more overlapping with each other.
        let (a, b) = (meter.count_call("a".into()), meter.count_call("b".into()));
        meter.call_ended(a, (0.0, 0.0), (0.0, 0.0));
        meter.call_ended(b, (0.0, 0.0), (0.0, 0.0));
        let c = meter.count_call("c".into());
        let d = meter.count_call("d".into());
        meter.call_ended(c, (0.0, 0.0), (0.0, 0.0));
        let e = meter.count_call("e".into());
        meter.call_ended(d, (0.0, 0.0), (0.0, 0.0));
        meter.call_ended(e, (0.0, 0.0), (0.0, 0.0));
        // a|b, then c (d alongside it), then e after c: three.
        assert_eq!((a, b, c, d, e), (1, 1, 2, 2, 3));
        let s = Sample::parse(&meter.finish(started, "x", 1)).unwrap();
        assert_eq!(s.round_trips, 3);
    }

    #[test]
    fn each_invocation_starts_from_zero() {
        let meter = Meter::default();
        let started = meter.begin();
        meter.set_kind("sync");
        meter.count_call("DynamoDB.Query".into());
        meter.finish(started, "sync", 1);
        let line = meter.finish(meter.begin(), "history", 1);
        let s = Sample::parse(&line).unwrap();
        assert_eq!((s.kind.as_str(), s.calls.len()), ("history", 0));
    }
}
