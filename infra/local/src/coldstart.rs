//! Cold starts: each function binary started over and over, timed from process start to its first Runtime API
//! `next` call (what Lambda calls the init phase). Other handlers (a Node.js baseline) are measured the same way.

use crate::{
    local::local_parameter_defaults,
    runtime::{Function, RuntimeOptions},
    stack::{Naming, Stack},
    template::{Template, TemplateError},
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
) -> Result<BTreeMap<String, InitStats>, TemplateError> {
    let mut naming = Naming::local("http://127.0.0.1:9");
    naming.gateway = Some("http://127.0.0.1:9".into());
    let stack = Stack::new(Template::load(template)?, naming, &local_parameter_defaults())?;
    let mut specs = stack.functions()?;
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
        emulator: Some("http://127.0.0.1:9".into()),
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
            while f.stats().init_ms.is_empty() && started.elapsed() < Duration::from_secs(20) {
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
