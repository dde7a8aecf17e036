//! Cold starts: each function binary started over and over, timed from process start to its first Runtime API
//! `next` call (what Lambda calls the init phase). Other handlers (a Node.js baseline) are measured the same way.

use crate::{
    local::local_parameter_defaults,
    runtime::{Function, RuntimeOptions},
    stack::{Naming, Stack},
    template::Template,
};
use serde::Serialize;
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

#[derive(Debug, Clone, Serialize)]
pub struct InitStats {
    pub runs: usize,
    pub min_ms: f64,
    pub p50_ms: f64,
    pub mean_ms: f64,
    pub max_ms: f64,
}

impl InitStats {
    fn of(mut v: Vec<f64>) -> Self {
        v.sort_by(f64::total_cmp);
        let n = v.len().max(1);
        Self {
            runs: v.len(),
            min_ms: v.first().copied().unwrap_or(0.0),
            p50_ms: v.get(v.len() / 2).copied().unwrap_or(0.0),
            mean_ms: v.iter().sum::<f64>() / n as f64,
            max_ms: v.last().copied().unwrap_or(0.0),
        }
    }
}

/// Starts every function of the template (and each `extra` binary, with the environment of `like`) `runs` times.
pub async fn measure(
    template: &Path,
    bin_dir: &Path,
    extra: &[(String, PathBuf)],
    like: &str,
    runs: usize,
) -> Result<BTreeMap<String, InitStats>, String> {
    let aws = stand_in_for_aws().await?;
    let mut naming = Naming::local(&aws);
    naming.gateway = Some(aws.clone());
    let stack = Stack::new(
        Template::load(template).map_err(|e| e.to_string())?,
        naming,
        &local_parameter_defaults(),
    )
    .map_err(|e| e.to_string())?;
    let mut specs = stack.functions().map_err(|e| e.to_string())?;
    let base = specs
        .iter()
        .find(|f| f.logical_id == like)
        .cloned()
        .or_else(|| specs.first().cloned());
    let mut binaries = std::collections::HashMap::new();
    for (name, path) in extra {
        if let Some(mut spec) = base.clone() {
            spec.logical_id = name.clone();
            binaries.insert(name.clone(), path.clone());
            specs.push(spec);
        }
    }
    let opts = RuntimeOptions {
        bin_dir: bin_dir.to_owned(),
        binaries,
        concurrency: 1,
        region: "us-east-1".into(),
        account: "123456789012".into(),
        emulator: Some(aws.clone()),
        log: Arc::new(|_, _| {}),
    };
    let mut out = BTreeMap::new();
    for spec in specs {
        let mut times = Vec::new();
        for _ in 0..runs {
            let f = Function::new(spec.clone(), opts.clone());
            if f.warm().await.is_err() {
                break;
            }
            let started = Instant::now();
            // An instance whose init failed is gone: waiting the full 20 s for it made a run of 20 starts of one
            // such function outlast `make bench`'s patience.
            while f.stats().init_ms.is_empty() && f.instance_count() > 0 && started.elapsed() < Duration::from_secs(20)
            {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            times.extend(f.stats().init_ms.first().copied());
            f.shutdown();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        out.insert(spec.logical_id.clone(), InitStats::of(times));
    }
    Ok(out)
}

/// A local server in AWS's place during init: it answers `GetSecretValue` with a key (the functions that read a
/// secret at init fail without one) and refuses every other request with 400, as AWS refuses the requests that open
/// the connections at init (`AwsApp::warm_up`). So the init measured is the one Lambda runs, connections included
/// (plain HTTP here: no TLS handshake), and no start waits on retries against an address nothing listens on.
async fn stand_in_for_aws() -> Result<String, String> {
    use axum::{http::HeaderMap, http::StatusCode, response::IntoResponse};
    async fn answer(headers: HeaderMap) -> impl IntoResponse {
        let target = headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if target.ends_with("GetSecretValue") {
            let body = serde_json::json!({"Name": "coldstart", "SecretString": "c".repeat(64), "VersionId": "v1"});
            (StatusCode::OK, body.to_string())
        } else {
            let body = serde_json::json!({"__type": "ValidationException", "message": "refused"});
            (StatusCode::BAD_REQUEST, body.to_string())
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("a local stand-in for AWS: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("a local stand-in for AWS: {e}"))?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, axum::Router::new().fallback(answer)).await;
    });
    Ok(format!("http://{addr}"))
}
