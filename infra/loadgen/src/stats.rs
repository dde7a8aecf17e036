//! natter-local's `/_natter/stats`, fetched before and after a run, and their difference: the AWS calls, modelled
//! capacity, invocations, duration and CPU time the run caused.

use natter_core::meter::Sample;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// GETs a JSON document over plain HTTP/1.1 (natter-local's stats are local).
pub async fn get_json(url: &str) -> Result<Value, String> {
    let rest = url.strip_prefix("http://").ok_or("stats URL must be http://")?;
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let mut s = tokio::net::TcpStream::connect(host)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&raw);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    serde_json::from_str(body).map_err(|e| format!("{url}: {e}"))
}

fn invocations(stats: &Value) -> u64 {
    stats["functions"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(_, f)| f["invocations"].as_u64())
        .sum()
}

/// Waits until no function has run for `quiet` (at most a minute), then returns the stats: a run measures only
/// itself, not the tail of what came before (disconnects of the previous run's clients, delayed presence events).
pub async fn quiesce(url: &str, quiet: std::time::Duration) -> Result<Value, String> {
    let step = std::time::Duration::from_millis(250);
    let give_up = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut last = get_json(url).await?;
    let mut still_since = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(step).await;
        let now = get_json(url).await?;
        if invocations(&now) != invocations(&last) {
            still_since = tokio::time::Instant::now();
        }
        last = now;
        if still_since.elapsed() >= quiet || tokio::time::Instant::now() >= give_up {
            return Ok(last);
        }
    }
}

/// What a run cost, from the stats difference.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct Usage {
    /// Per function and kind: the EMF sums.
    pub samples: Vec<Sample>,
    /// AWS calls by service and operation.
    pub calls: BTreeMap<String, u64>,
    pub model_read_units: f64,
    pub model_write_units: f64,
    /// What the emulator reported (moto answers a constant per call).
    pub reported_read_units: f64,
    pub reported_write_units: f64,
    pub invocations: u64,
    /// Sum of invocation durations, per function's memory: GB-seconds.
    pub gb_seconds: f64,
    pub duration_ms: f64,
    /// Time inside the functions spent with at least one AWS call in flight.
    pub aws_busy_ms: f64,
    /// Time of the invocations that wrote metrics (the denominator of the busy share).
    pub metered_ms: f64,
    pub cpu_ms: f64,
    /// Consumer invocations (each costs an SQS receive and delete).
    pub consumer_batches: u64,
}

fn samples(v: &Value) -> BTreeMap<(String, String), Sample> {
    v["metrics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| serde_json::from_value::<Sample>(s.clone()).ok())
        .map(|s| ((s.function.clone(), s.kind.clone()), s))
        .collect()
}

pub fn diff(before: &Value, after: &Value) -> Usage {
    let (b, a) = (samples(before), samples(after));
    let mut u = Usage::default();
    for (key, s) in &a {
        let zero = Sample::default();
        let p = b.get(key).unwrap_or(&zero);
        let d = s.since(p);
        for (op, delta) in &d.calls {
            *u.calls.entry(op.clone()).or_default() += delta;
        }
        if d.invocations == 0 {
            continue;
        }
        u.model_read_units += d.model_read_units;
        u.model_write_units += d.model_write_units;
        u.reported_read_units += d.read_units;
        u.reported_write_units += d.write_units;
        u.aws_busy_ms += d.aws_busy_ms;
        u.metered_ms += d.duration_ms;
        if d.kind.ends_with("Job") {
            u.consumer_batches += d.invocations;
        }
        u.samples.push(d);
    }
    for (name, f) in after["functions"].as_object().into_iter().flatten() {
        let p = &before["functions"][name];
        let n = |v: &Value, k: &str| v[k].as_u64().unwrap_or(0);
        u.invocations += n(f, "invocations") - n(p, "invocations");
        let durations = f["duration_ms"].as_array().cloned().unwrap_or_default();
        let skip = p["duration_ms"].as_array().map(Vec::len).unwrap_or(0);
        let ms: f64 = durations.iter().skip(skip).filter_map(Value::as_f64).sum();
        u.duration_ms += ms;
        u.gb_seconds += ms / 1000.0 * f["memory_mb"].as_f64().unwrap_or(128.0) / 1024.0;
        u.cpu_ms += f["cpu_ms"].as_f64().unwrap_or(0.0) - p["cpu_ms"].as_f64().unwrap_or(0.0);
    }
    u
}
