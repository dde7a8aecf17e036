//! The soak test, short: pairs chat while clients drop (half of them without a close frame) and come back at
//! random, then sync and acknowledge what they missed. Every acked message reaches its recipient (pushed or
//! synced), none twice as a new message, in the order it was sent. `make soak` runs it for 30 minutes.

use natter_loadgen::run::{Options, Scenario, run};
use natter_tests::scan;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_dropping_and_reconnecting_at_random_lose_nothing_and_see_nothing_twice() {
    let (opts, logs) = natter_tests::options();
    let local = natter_local::local::Local::start(opts).await.expect("natter-local");
    let duration = env_or("NATTER_SOAK_SECONDS", 20.0);
    let (rate, churn) = (env_or("NATTER_SOAK_RATE", 10.0), env_or("NATTER_SOAK_CHURN", 1.0));
    let o = Options {
        url: local.ws_url.clone(),
        secret: Some(natter_local::local::dev_secret()),
        scenario: Scenario::Churn,
        clients: env_or("NATTER_SOAK_CLIENTS", 20),
        group_size: 0,
        online: 0,
        rate,
        duration_secs: duration,
        body_bytes: 40,
        group_ack_ms: 500,
        group_ack_max_ms: 2_000,
        churn_per_sec: churn,
        stats_url: None,
        label: "soak".into(),
        progress: false,
    };
    let r = run(o).await.expect("the load ran");
    let g = &r.guarantees;
    eprintln!(
        "soak: {} sent, {} acked, {} retries, {} reconnects, {} delivered; {g:?}",
        r.sent, r.acked, r.retries, r.reconnects, r.delivered
    );
    if g.loss > 0 {
        // Where the lost ones are: the recipient's presence and connections, and the messages themselves.
        let lost_users: std::collections::BTreeSet<&str> = g.lost.iter().filter_map(|l| l.split(':').next()).collect();
        for line in logs.lines() {
            if lost_users.iter().any(|u| line.contains(&format!("user={u} "))) {
                eprintln!("log: {line}");
            }
        }
        for table in ["PresenceTable", "ConnectionsTable", "MessagesTable"] {
            for item in scan(&local, table).await {
                let text = format!("{item:?}");
                let about_user = lost_users.iter().any(|u| text.contains(u));
                let lost_message = g.lost.iter().any(|l| text.contains(l.split(':').nth(1).unwrap_or("-")));
                if (table != "MessagesTable" && about_user) || lost_message {
                    eprintln!("{table}: {text}");
                }
            }
        }
    }
    assert_eq!(
        (g.loss, g.duplicates, g.order_violations, g.unexpected),
        (0, 0, 0, 0),
        "{g:?}"
    );
    assert_eq!(r.failed, 0, "every send was acked in the end");
    assert!(
        r.acked as f64 >= duration * rate * 0.5,
        "the load ran: {} acked",
        r.acked
    );
    assert!(
        r.reconnects as f64 >= duration * churn * 0.5,
        "clients churned: {} reconnects",
        r.reconnects
    );
    local.stop().await;
}
