//! `natter-loadgen`: see `natter-loadgen --help` and docs/performance.md.

use clap::Parser;
use natter_loadgen::{
    markdown,
    run::{Options, Report, Scenario, run},
};
use std::{path::PathBuf, process::ExitCode};

#[derive(Parser)]
#[command(
    name = "natter-loadgen",
    about = "Drives websocket users against natter and reports latency, guarantees and cost"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    load: Load,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Renders the bench results of a directory (loadgen reports, coldstart.json, sizes.json) into a Markdown
    /// file, between its `<!-- bench:start -->` and `<!-- bench:end -->` markers.
    Report {
        #[arg(long, default_value = "bench-out")]
        dir: PathBuf,
        #[arg(long, default_value = "docs/performance.md")]
        doc: PathBuf,
    },
}

#[derive(clap::Args)]
struct Load {
    /// The WebSocket API: ws://127.0.0.1:3001 (natter-local) or wss://{api}.execute-api.{region}.amazonaws.com/{stage}.
    #[arg(long, default_value = "ws://127.0.0.1:3001")]
    url: String,
    /// Signs the users' tokens (natter-local's development secret unless NATTER_JWT_SECRET is set).
    #[arg(long, env = "NATTER_JWT_SECRET", default_value = natter_core::auth::DEV_SECRET, hide_env_values = true)]
    secret: String,
    #[arg(long, value_enum, default_value = "pairs")]
    scenario: Scenario,
    /// Users (pairs and offline scenarios).
    #[arg(long, default_value_t = 20)]
    clients: usize,
    #[arg(long, default_value_t = 10)]
    group_size: usize,
    /// Members online (and sending) in the group scenario.
    #[arg(long, default_value_t = 5)]
    online: usize,
    /// Messages per second, all senders together.
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// Seconds of load.
    #[arg(long, default_value_t = 30.0)]
    duration: f64,
    #[arg(long, default_value_t = 100)]
    body_bytes: usize,
    /// Clients acknowledge a group once no message came in it for this many ms (one batched `upToSeq` ack)...
    #[arg(long, default_value_t = 2000)]
    group_ack_ms: u64,
    /// ...or once their oldest unacknowledged message in it is this many ms old, while it stays busy.
    #[arg(long, default_value_t = 30_000)]
    group_ack_max_ms: u64,
    /// Churn scenario: reconnects per second across all clients (each drops, stays away up to 1.5 s, syncs).
    #[arg(long, default_value_t = 0.5)]
    churn_per_sec: f64,
    /// natter-local's stats endpoint (default: derived from a ws:// URL); `none` to skip AWS accounting.
    #[arg(long)]
    stats: Option<String>,
    #[arg(long)]
    label: Option<String>,
    /// Where to write the report as JSON.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Where to write the report as Markdown.
    #[arg(long)]
    markdown: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Report { dir, doc }) = cli.command {
        return match natter_loadgen::bench::render(&dir, &doc) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("natter-loadgen: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let cli = cli.load;
    let stats_url = match cli.stats.as_deref() {
        Some("none") => None,
        Some(u) => Some(u.to_owned()),
        None => cli
            .url
            .strip_prefix("ws://")
            .map(|h| format!("http://{}/_natter/stats", h.trim_end_matches('/'))),
    };
    let label = cli.label.clone().unwrap_or_else(|| match cli.scenario {
        Scenario::Group => format!("group of {}, {} online", cli.group_size, cli.online),
        s => format!("{s:?} ({} users)", cli.clients).to_lowercase(),
    });
    let options = Options {
        url: cli.url.trim_end_matches('/').to_owned(),
        secret: Some(cli.secret),
        scenario: cli.scenario,
        clients: cli.clients,
        group_size: cli.group_size,
        online: cli.online,
        rate: cli.rate,
        duration_secs: cli.duration,
        body_bytes: cli.body_bytes,
        group_ack_ms: cli.group_ack_ms,
        group_ack_max_ms: cli.group_ack_max_ms,
        churn_per_sec: cli.churn_per_sec,
        stats_url,
        label,
        progress: true,
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("natter-loadgen: {e}");
            return ExitCode::FAILURE;
        }
    };
    let report: Report = match rt.block_on(run(options)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("natter-loadgen: {e}");
            return ExitCode::FAILURE;
        }
    };
    let json = serde_json::to_string_pretty(&report).unwrap_or_default();
    if let Some(p) = &cli.out
        && let Err(e) = std::fs::write(p, &json)
    {
        eprintln!("natter-loadgen: {}: {e}", p.display());
    }
    let md = format!(
        "{}\n{}\n{}",
        markdown::latency_table(std::slice::from_ref(&report)),
        markdown::cost_table(std::slice::from_ref(&report)),
        markdown::calls_table(std::slice::from_ref(&report))
    );
    if let Some(p) = &cli.markdown
        && let Err(e) = std::fs::write(p, &md)
    {
        eprintln!("natter-loadgen: {}: {e}", p.display());
    }
    println!("{md}");
    let g = &report.guarantees;
    if g.loss + g.duplicates + g.order_violations + g.seq_gaps + g.unexpected > 0 || report.failed > 0 {
        eprintln!(
            "natter-loadgen: guarantees broken: {g:?}, {} sends failed",
            report.failed
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
