//! Renders `make bench`'s results (loadgen reports, cold starts, binary sizes) into docs/performance.md.

use crate::{cost::PRICES, markdown, run::Report};
use serde_json::{Map, Value};
use std::{fmt::Write, path::Path};

const START: &str = "<!-- bench:start -->";
const END: &str = "<!-- bench:end -->";

fn read(path: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// Reports in the order the bench ran them (file name order: 1-pairs.json, 2-group10.json, ...).
fn reports(dir: &Path) -> Result<Vec<Report>, String> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    Ok(paths
        .iter()
        .filter_map(|p| read(p))
        .filter(|v| v.get("send_to_ack_ms").is_some())
        .filter_map(|v| report_from(&v))
        .collect())
}

/// Reports are written by this crate; read back the parts the tables need.
fn report_from(v: &Value) -> Option<Report> {
    serde_json::from_value(v.clone()).ok()
}

/// Binary and zip sizes of the functions named in `v`.
fn sizes_table(v: &Value, sizes: &Value) -> String {
    let mut t = String::from("| function | binary (MB) | zip (MB) |\n|---|---|---|\n");
    for (name, _) in v.as_object().into_iter().flatten() {
        let (binary, zip) = size_cells(sizes, name);
        let _ = writeln!(t, "| {name} | {binary} | {zip} |");
    }
    t
}

/// The binary and zip sizes of one function in MB, or `-`.
fn size_cells(sizes: &Value, name: &str) -> (String, String) {
    let mb = |key: &str| {
        sizes
            .get(name)
            .and_then(|b| b[key].as_f64())
            .map(|b| format!("{:.1}", b / 1e6))
            .unwrap_or("-".into())
    };
    (mb("binary"), mb("zip"))
}

fn coldstart_table(v: &Value, sizes: &Value) -> String {
    let mut t = String::from(
        "| function | binary (MB) | zip (MB) | init p50 (ms) | init mean (ms) | init max (ms) |\n|---|---|---|---|---|---|\n",
    );
    let mut rust_p50 = Vec::new();
    for (name, s) in v.as_object().into_iter().flatten() {
        let (binary, zip) = size_cells(sizes, name);
        let p50 = s["p50_ms"].as_f64().unwrap_or(0.0);
        if name != "NodeSdk" {
            rust_p50.push(p50);
        }
        let _ = writeln!(
            t,
            "| {name} | {binary} | {zip} | {p50:.1} | {:.1} | {:.1} |",
            s["mean_ms"].as_f64().unwrap_or(0.0),
            s["max_ms"].as_f64().unwrap_or(0.0)
        );
    }
    if let Some(node) = v.get("NodeSdk").and_then(|n| n["p50_ms"].as_f64()) {
        rust_p50.sort_by(f64::total_cmp);
        let median = rust_p50.get(rust_p50.len() / 2).copied().unwrap_or(1.0);
        let _ = writeln!(
            t,
            "\nInit ratio: the Node.js 20 handler with `@aws-sdk/client-dynamodb` and `@aws-sdk/client-apigatewaymanagementapi` takes **{:.1}x** as long to reach its first `next` as the median natter function ({node:.1} ms vs {median:.1} ms).",
            node / median.max(0.001)
        );
    }
    t
}

/// The reports of a subdirectory, if it has any.
fn reports_in(dir: &Path) -> Vec<Report> {
    if dir.is_dir() {
        reports(dir).unwrap_or_default()
    } else {
        Vec::new()
    }
}

pub fn render(dir: &Path, doc: &Path) -> Result<(), String> {
    let reports = reports(dir)?;
    let mut out = String::new();
    let _ = writeln!(out, "{START}");
    let meta = read(&dir.join("meta.json")).unwrap_or_default();
    let _ = writeln!(
        out,
        "_Measured by `make bench` on {} ({}), release builds, natter-local on MiniStack (and on moto where the emulators are compared). Prices: {}._\n",
        meta["date"].as_str().unwrap_or("?"),
        meta["machine"].as_str().unwrap_or("this machine"),
        PRICES.as_of
    );
    let _ = writeln!(
        out,
        "### Latency and guarantees\n\n{}",
        markdown::latency_table(&reports)
    );
    let moto = reports_in(&dir.join("moto"));
    if !moto.is_empty() {
        let _ = writeln!(
            out,
            "### The two emulators, same binaries, same load\n\n{}",
            markdown::emulators_table(&[("MiniStack", &reports), ("moto", &moto)])
        );
    }
    let _ = writeln!(
        out,
        "### AWS calls, capacity and dollars per message\n\nCapacity units are modelled from each request under DynamoDB's billing rules (see \"How the numbers are made\" and the check against MiniStack below). Dollars are per **million messages**.\n\n{}",
        markdown::cost_table(&reports)
    );
    let _ = writeln!(
        out,
        "### The capacity model against what MiniStack reports\n\nPer invocation of each function and kind, over the MiniStack runs above. MiniStack reports capacity as AWS computes it for the calls it reports at all; it reports none for `BatchGetItem`, for a write whose condition failed, or for a cancelled transaction, all of which AWS bills. Where the model is higher, that is the reason. Round trips are the longest chain of AWS calls each made after the one before it ended (calls made together count once): what an invocation waits for in sequence, the ack included for `send`.\n\n{}",
        markdown::capacity_table(&reports)
    );
    let _ = writeln!(
        out,
        "### Calls per message, and natter's own time\n\n{}",
        markdown::calls_table(&reports)
    );
    if let Some(changes) = reports.iter().find_map(|r| r.changes.as_ref()) {
        let _ = writeln!(
            out,
            "### Heartbeat, typing, edit, reaction and delete: what one frame costs\n\nAfter the one-on-one load, each of up to 10 senders sends a `heartbeat` (its second: the first writes last seen, which these users, never disconnected, have none of yet; heartbeats within half an hour of that write do not), a `typing` notice, an `edit`, its partner a `react` and the sender a `delete` about one of its messages, measured apart from the load (the rate limit's counter is one write unit in each but `heartbeat` and `typing`).\n\n{}",
            crate::changes::table(changes)
        );
    }
    let sizes = read(&dir.join("sizes.json"));
    match (read(&dir.join("coldstart.json")), sizes) {
        (Some(c), sizes) => {
            let _ = writeln!(
                out,
                "### Binary sizes and cold starts\n\n{}",
                coldstart_table(&c, &sizes.unwrap_or_default())
            );
        }
        // The cold-start step timed out (bench.sh): the sizes alone, with every function and no init column.
        (None, Some(sizes)) => {
            let names: Map<String, Value> = sizes
                .as_object()
                .into_iter()
                .flatten()
                .map(|(name, _)| (name.clone(), Value::Null))
                .collect();
            let _ = writeln!(
                out,
                "### Binary sizes\n\nCold starts were not measured in this run (`natter-local coldstart` did not finish); `bench/init_time.py` measures init (see \"Connections opened at init\").\n\n{}",
                sizes_table(&Value::Object(names), &sizes)
            );
        }
        (None, None) => {}
    }
    if let Some(cmds) = meta["commands"].as_array() {
        let _ = writeln!(out, "\nCommands:\n\n```sh");
        for c in cmds {
            let _ = writeln!(out, "{}", c.as_str().unwrap_or_default());
        }
        let _ = writeln!(out, "```");
    }
    let _ = write!(out, "{END}");
    let text = std::fs::read_to_string(doc).map_err(|e| format!("{}: {e}", doc.display()))?;
    let (Some(a), Some(b)) = (text.find(START), text.find(END)) else {
        return Err(format!("{} has no {START} ... {END} section", doc.display()));
    };
    let new = format!("{}{out}{}", &text[..a], &text[b + END.len()..]);
    std::fs::write(doc, new).map_err(|e| format!("{}: {e}", doc.display()))
}
