//! Reports as Markdown tables.

use crate::run::Report;
use natter_core::meter::Sample;
use std::{collections::BTreeMap, fmt::Write};

fn ms(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

/// One row per report: traffic, latency and guarantees.
pub fn latency_table(reports: &[Report]) -> String {
    let mut t = String::from(
        "| scenario | sent | acked | send→ack p50 / p95 / p99 / max (ms) | send→delivery p50 / p95 / p99 / max (ms) | loss | duplicates | order | repeats |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in reports {
        let a = &r.send_to_ack_ms;
        let d = match &r.sync_ms {
            Some(s) => format!("sync {} / {} / {} / {}", ms(s.p50), ms(s.p95), ms(s.p99), ms(s.max)),
            None => {
                let d = &r.send_to_delivery_ms;
                format!("{} / {} / {} / {}", ms(d.p50), ms(d.p95), ms(d.p99), ms(d.max))
            }
        };
        let g = &r.guarantees;
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} / {} / {} / {} | {} | {} | {} | {} | {} |",
            r.label,
            r.sent,
            r.acked,
            ms(a.p50),
            ms(a.p95),
            ms(a.p99),
            ms(a.max),
            d,
            g.loss,
            g.duplicates,
            g.order_violations + g.seq_gaps,
            g.repeats
        );
    }
    t
}

/// One row per report: what a message costs in calls, capacity and dollars.
pub fn cost_table(reports: &[Report]) -> String {
    let mut t = String::from(
        "| scenario | DynamoDB calls | WRU | RRU | SQS requests | Lambda invocations | WebSocket messages | $ DynamoDB | $ SQS | $ Lambda | $ API Gateway | **$ per 1M messages** |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in reports {
        let (Some(p), Some(c), Some(calls)) = (&r.per_message, &r.cost_per_million, &r.calls_per_message) else {
            continue;
        };
        let dynamo: f64 = calls
            .iter()
            .filter(|(k, _)| k.starts_with("DynamoDB."))
            .map(|(_, v)| v)
            .sum();
        let _ = writeln!(
            t,
            "| {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | **{:.2}** |",
            r.label,
            dynamo,
            p.write_units,
            p.read_units,
            p.sqs_requests,
            p.lambda_invocations,
            p.websocket_messages,
            c.dynamodb,
            c.sqs,
            c.lambda,
            c.api_gateway,
            c.total
        );
    }
    t
}

/// Calls per message by operation, and natter's own share of the functions' time.
pub fn calls_table(reports: &[Report]) -> String {
    let mut t = String::from(
        "| scenario | calls per message | function time outside AWS calls: share, ms per message | CPU ms per message |\n|---|---|---|---|\n",
    );
    for r in reports {
        let Some(calls) = &r.calls_per_message else { continue };
        let list: Vec<String> = calls.iter().map(|(k, v)| format!("{k} {v:.2}")).collect();
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} |",
            r.label,
            list.join(", "),
            match (r.own_share, &r.usage) {
                (Some(share), Some(u)) if r.sent > 0 => format!(
                    "{:.1} %, {:.2} ms",
                    share * 100.0,
                    (u.metered_ms - u.aws_busy_ms).max(0.0) / r.sent as f64
                ),
                _ => String::new(),
            },
            r.cpu_ms_per_message.map(|c| format!("{c:.2}")).unwrap_or_default()
        );
    }
    t
}

/// The same scenarios on several emulators: latency and guarantees side by side.
pub fn emulators_table(runs: &[(&str, &[Report])]) -> String {
    let mut t = String::from(
        "| scenario | emulator | sent | acked | send→ack p50 / p95 / p99 (ms) | send→delivery p50 / p95 / p99 (ms) | loss | duplicates | order |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    let Some((_, first)) = runs.first() else { return t };
    for label in first.iter().map(|r| &r.label) {
        for (emulator, reports) in runs {
            let Some(r) = reports.iter().find(|r| &r.label == label) else {
                continue;
            };
            let (a, g) = (&r.send_to_ack_ms, &r.guarantees);
            let (label, d) = match &r.sync_ms {
                Some(s) => ("sync ", s),
                None => ("", &r.send_to_delivery_ms),
            };
            let _ = writeln!(
                t,
                "| {} | {emulator} | {} | {} | {} / {} / {} | {label}{} / {} / {} | {} | {} | {} |",
                r.label,
                r.sent,
                r.acked,
                ms(a.p50),
                ms(a.p95),
                ms(a.p99),
                ms(d.p50),
                ms(d.p95),
                ms(d.p99),
                g.loss,
                g.duplicates,
                g.order_violations + g.seq_gaps
            );
        }
    }
    t
}

/// Modelled against reported capacity, per function and kind, summed over the reports.
pub fn capacity_table(reports: &[Report]) -> String {
    let mut sums: BTreeMap<(String, String), Sample> = BTreeMap::new();
    for s in reports.iter().filter_map(|r| r.usage.as_ref()).flat_map(|u| &u.samples) {
        let e = sums
            .entry((s.function.clone(), s.kind.clone()))
            .or_insert_with(|| Sample {
                function: s.function.clone(),
                kind: s.kind.clone(),
                ..Default::default()
            });
        e.add(s);
    }
    let mut t = String::from(
        "| function | kind | invocations | RRU modelled / reported | WRU modelled / reported | sequential AWS round trips |\n|---|---|---|---|---|---|\n",
    );
    for s in sums.values().filter(|s| s.invocations > 0) {
        let n = s.invocations as f64;
        let _ = writeln!(
            t,
            "| {} | {} | {} | {:.2} / {:.2} | {:.2} / {:.2} | {:.2} |",
            s.function,
            s.kind,
            s.invocations,
            s.model_read_units / n,
            s.read_units / n,
            s.model_write_units / n,
            s.write_units / n,
            s.round_trips as f64 / n
        );
    }
    t
}
