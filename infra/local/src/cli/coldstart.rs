//! `natter-local coldstart`: each function's init time over repeated starts, as JSON.

use std::{path::PathBuf, process::ExitCode};

pub async fn run(
    runs: usize,
    bin_dir: &std::path::Path,
    extra: Vec<(String, String)>,
    out: Option<PathBuf>,
) -> ExitCode {
    let extra: Vec<(String, PathBuf)> = extra.into_iter().map(|(k, v)| (k, PathBuf::from(v))).collect();
    let template = natter_local::process::workspace_root().join("template.yaml");
    match natter_local::coldstart::measure(&template, bin_dir, &extra, "SendFunction", runs).await {
        Ok(r) => {
            let json = serde_json::to_string_pretty(&r).unwrap_or_default();
            println!("{json}");
            if let Some(p) = out
                && let Err(e) = std::fs::write(&p, json)
            {
                eprintln!("natter-local: {}: {e}", p.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("natter-local: {e}");
            ExitCode::FAILURE
        }
    }
}
