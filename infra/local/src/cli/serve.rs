//! `natter-local` (or `natter-local serve`): the whole stack in the foreground until Ctrl-C.

use super::Serve;
use natter_local::local::{Local, LocalOptions};
use std::{path::PathBuf, process::ExitCode, time::Duration};

pub async fn run(serve: Serve, endpoint: Option<String>) -> ExitCode {
    natter_core::lambda::lambda_runtime::tracing::init_default_subscriber();
    let mut opts = LocalOptions::new(endpoint);
    opts.account = serve.account;
    opts.dynamodb_endpoint = serve.dynamodb_endpoint;
    opts.read_lag = (serve.read_lag > 0).then(|| Duration::from_millis(serve.read_lag));
    opts.replica_kind = serve.emulator;
    opts.limits = natter_local::gateway::AccountLimits {
        connects_per_sec: serve.connect_rate,
        management_per_sec: serve.management_rate,
    };
    opts.host = serve.host;
    opts.port = serve.port;
    if let Some(t) = serve.template {
        opts.template = t;
    }
    if let Some(b) = serve.bin_dir {
        opts.bin_dir = b;
    }
    opts.concurrency = serve.concurrency;
    opts.pollers = serve.pollers;
    opts.idle_timeout = Duration::from_secs(serve.idle_timeout);
    opts.max_duration = Duration::from_secs(serve.max_duration);
    opts.max_visibility = serve.max_visibility_timeout;
    opts.parameters.extend(serve.parameters);
    opts.binaries
        .extend(serve.binaries.into_iter().map(|(k, v)| (k, PathBuf::from(v))));
    let local = match Local::start(opts).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("natter-local: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "natter-local ready: {} (stage {}; @connections {}; emulator {}{}; token: natter-local token USER)",
        local.ws_url,
        local.stack.api().map(|a| a.stage).unwrap_or_default(),
        local.management_url,
        local.emulator.as_deref().unwrap_or("AWS"),
        local
            .replica
            .as_ref()
            .map(|r| format!(", reads lag {} ms", r.lag.as_millis()))
            .unwrap_or_default(),
    );
    let _ = tokio::signal::ctrl_c().await;
    println!("natter-local: stopping");
    local.stop().await;
    ExitCode::SUCCESS
}
