//! After a one-on-one load: what one `heartbeat`, `typing`, `edit`, `react` and `delete` frame costs. Measured on
//! its own (between two quiet stats snapshots, after the load's own usage was taken), so the per-message figures of
//! the load stay those of sending alone.

use crate::{
    client::Client,
    stats::{Usage, diff, quiesce},
};
use serde_json::{Value, json};
use std::{sync::Arc, time::Duration};

/// The frames each sender sends about one of its messages, in order (the partner reacts), after a heartbeat.
const FRAMES: [&str; 5] = ["heartbeat", "typing", "edit", "react", "delete"];

/// Sends, for each `(sender, partner, message id)`, a heartbeat, a typing notice, an edit, the partner's reaction
/// and a delete for everyone; the usage they caused, once every consumer is quiet. Every frame must be answered
/// (`pong` or `ok`). The measured heartbeat is each sender's second: the first writes last seen (none is stored for
/// a user who never disconnected), the ones that follow within half an hour do not, and those are nearly all of them.
pub async fn measure(
    stats_url: &str,
    quiet: Duration,
    work: &[(Arc<Client>, Arc<Client>, String)],
) -> Result<Usage, String> {
    for (sender, _, _) in work {
        exchange(sender, "heartbeat", heartbeat()).await?;
    }
    let before = quiesce(stats_url, quiet).await?;
    let runs = work.iter().map(|(sender, partner, id)| async move {
        for kind in FRAMES {
            let (who, frame) = match kind {
                "heartbeat" => (sender, heartbeat()),
                "typing" => (sender, json!({"action": "typing", "to": partner.user})),
                "edit" => (sender, json!({"action": "edit", "messageId": id, "body": "edited"})),
                "react" => (partner, json!({"action": "react", "messageId": id, "emoji": "👍"})),
                _ => (sender, json!({"action": "delete", "messageId": id})),
            };
            exchange(who, kind, frame).await?;
        }
        Ok::<(), String>(())
    });
    for r in futures::future::join_all(runs).await {
        r?;
    }
    let after = quiesce(stats_url, quiet).await?;
    Ok(diff(&before, &after))
}

fn heartbeat() -> Value {
    json!({"action": "heartbeat"})
}

/// Sends `frame` (of `kind`) and checks its reply: `pong` for a heartbeat, `ok` for the others.
async fn exchange(who: &Client, kind: &str, frame: Value) -> Result<(), String> {
    let reply = who
        .request(frame, Duration::from_secs(10))
        .await
        .ok_or(format!("no reply to {kind}"))?;
    let expected = if kind == "heartbeat" { "pong" } else { "ok" };
    if reply["type"] != expected {
        return Err(format!("{kind}: {reply}"));
    }
    Ok(())
}

/// The changes' rows for the bench: per frame kind, what one invocation cost.
pub fn table(usage: &Usage) -> String {
    let mut t = String::from(
        "| frame | invocations | write units / frame | read units / frame | DynamoDB calls / frame |\n|---|---|---|---|---|\n",
    );
    for kind in FRAMES {
        for s in usage.samples.iter().filter(|s| s.kind == kind && s.invocations > 0) {
            let n = s.invocations as f64;
            let calls: Vec<String> = s
                .calls
                .iter()
                .filter(|(op, _)| op.starts_with("DynamoDB."))
                .map(|(op, c)| format!("{} {:.1}", op.trim_start_matches("DynamoDB."), *c as f64 / n))
                .collect();
            t.push_str(&format!(
                "| {kind} | {} | {:.2} | {:.2} | {} |\n",
                s.invocations,
                s.model_write_units / n,
                s.model_read_units / n,
                if calls.is_empty() {
                    "none".into()
                } else {
                    calls.join(", ")
                }
            ));
        }
    }
    t
}

/// The pairs load's senders with one acked message each and their partners: at most `pairs` of them.
pub fn pick(
    online: &[Arc<Client>],
    sends: &[crate::record::SendRecord],
    pairs: usize,
) -> Vec<(Arc<Client>, Arc<Client>, String)> {
    let find = |user: &str| online.iter().find(|c| c.user == user).cloned();
    let mut seen = std::collections::HashSet::new();
    sends
        .iter()
        .filter(|s| s.acked_at.is_some() && s.group.is_none())
        .filter_map(|s| {
            Some((
                find(&s.sender)?,
                find(s.expected.first()?)?,
                s.message_ids.iter().next()?.clone(),
            ))
        })
        .filter(|(sender, _, _)| seen.insert(sender.user.clone()))
        .take(pairs)
        .collect()
}
