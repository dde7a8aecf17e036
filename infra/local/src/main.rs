//! `natter-local`: the whole natter stack on one machine. See README.md and docs/architecture.md.

use clap::{Parser, Subcommand};
use natter_core::ids::UserId;
use natter_local::{
    local::{Local, LocalOptions},
    moto::Moto,
};
use std::{path::PathBuf, process::ExitCode, time::Duration};

#[derive(Parser)]
#[command(
    name = "natter-local",
    about = "natter's WebSocket API, functions and queues on one machine, from template.yaml"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: Serve,
}

#[derive(Subcommand)]
enum Command {
    /// Run the stack (the default).
    Serve(Serve),
    /// Connect as USER: every line typed is sent as a frame, every frame received is printed.
    Connect {
        user: String,
        #[arg(long, default_value = "ws://127.0.0.1:3001")]
        url: String,
    },
    /// Time each function's cold start (process start to the first Runtime API `next`) over repeated starts.
    Coldstart {
        #[arg(long, default_value_t = 20)]
        runs: usize,
        /// Where the function binaries are (target/release for realistic numbers).
        #[arg(long, default_value = "target/release")]
        bin_dir: PathBuf,
        /// Another handler to time the same way, NAME=PATH (e.g. a Node.js baseline).
        #[arg(long = "extra", value_parser = key_value)]
        extra: Vec<(String, String)>,
        /// Writes the results as JSON here (they are printed anyway).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Move the dead-lettered jobs of QUEUE (e.g. HistoryQueue, or its HistoryDeadLetterQueue) back to the queue,
    /// on a running natter-local.
    Redrive {
        queue: String,
        /// The running natter-local.
        #[arg(long, default_value = "http://127.0.0.1:3001")]
        url: String,
    },
    /// Print a development token for USER (signed with NATTER_JWT_SECRET or the local secret).
    Token {
        user: String,
        /// Validity in seconds.
        #[arg(long, default_value_t = 86_400)]
        ttl: u64,
    },
}

#[derive(clap::Args, Clone)]
struct Serve {
    /// Port of the WebSocket API and the @connections endpoint.
    #[arg(long, default_value_t = 3001)]
    port: u16,
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// An emulator (or `aws` for AWS itself) instead of the embedded moto_server.
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    endpoint: Option<String>,
    /// The SAM template.
    #[arg(long)]
    template: Option<PathBuf>,
    /// Where the function binaries are (target/debug by default).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Most instances of one function running at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Pollers per SQS event source.
    #[arg(long, default_value_t = 2)]
    pollers: usize,
    /// Seconds without a client frame before a connection is closed (API Gateway: 600).
    #[arg(long, default_value_t = 600)]
    idle_timeout: u64,
    /// Seconds a connection may last (API Gateway: 7200).
    #[arg(long, default_value_t = 7200)]
    max_duration: u64,
    /// Caps queue visibility timeouts (seconds) so that failed jobs come back quickly.
    #[arg(long)]
    max_visibility_timeout: Option<u64>,
    /// Template parameter overrides, KEY=VALUE.
    #[arg(long = "parameter", value_parser = key_value)]
    parameters: Vec<(String, String)>,
    /// Run another binary for a function, LOGICALID=PATH.
    #[arg(long = "function-binary", value_parser = key_value)]
    binaries: Vec<(String, String)>,
}

fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("`{s}` is not KEY=VALUE"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let serve = match cli.command {
        Some(Command::Token { user, ttl }) => {
            let Ok(user) = UserId::parse(&user) else {
                eprintln!("natter-local: `{user}` is not a valid user id (1-64 characters of A-Z a-z 0-9 _ . -)");
                return ExitCode::FAILURE;
            };
            let secret = natter_local::local::dev_secret();
            println!("{}", natter_core::auth::mint(secret.as_bytes(), &user, ttl));
            return ExitCode::SUCCESS;
        }
        Some(Command::Redrive { queue, url }) => {
            return match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt.block_on(redrive(&url, &queue)),
                Err(_) => ExitCode::FAILURE,
            };
        }
        Some(Command::Connect { user, url }) => {
            let Ok(user) = UserId::parse(&user) else {
                eprintln!("natter-local: `{user}` is not a valid user id");
                return ExitCode::FAILURE;
            };
            let secret = natter_local::local::dev_secret();
            let token = natter_core::auth::mint(secret.as_bytes(), &user, 86_400);
            return match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt.block_on(connect(&url, &token)),
                Err(_) => ExitCode::FAILURE,
            };
        }
        Some(Command::Coldstart {
            runs,
            bin_dir,
            extra,
            out,
        }) => {
            let extra: Vec<(String, PathBuf)> = extra.into_iter().map(|(k, v)| (k, PathBuf::from(v))).collect();
            let template = natter_local::moto::workspace_root().join("template.yaml");
            let result = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
                .and_then(|rt| {
                    rt.block_on(natter_local::coldstart::measure(
                        &template,
                        &bin_dir,
                        &extra,
                        "SendFunction",
                        runs,
                    ))
                    .map_err(|e| e.to_string())
                });
            return match result {
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
            };
        }
        Some(Command::Serve(s)) => s,
        None => cli.serve,
    };
    // The embedded emulator starts on the main thread, which lives as long as natter-local: if natter-local dies,
    // the kernel stops moto too.
    let (endpoint, _moto) = match serve.endpoint.as_deref() {
        Some("aws") => (None, None),
        Some(e) => (Some(e.to_owned()), None),
        None => match Moto::start() {
            Ok(m) => (Some(m.endpoint.clone()), Some(m)),
            Err(e) => {
                eprintln!("natter-local: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("natter-local: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(serve, endpoint))
}

async fn run(serve: Serve, endpoint: Option<String>) -> ExitCode {
    natter_core::lambda::lambda_runtime::tracing::init_default_subscriber();
    let mut opts = LocalOptions::new(endpoint);
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
        "natter-local ready: {} (stage {}; @connections {}; emulator {}; token: natter-local token USER)",
        local.ws_url,
        local.stack.api().map(|a| a.stage).unwrap_or_default(),
        local.management_url,
        local.emulator.as_deref().unwrap_or("AWS"),
    );
    let _ = tokio::signal::ctrl_c().await;
    println!("natter-local: stopping");
    local.stop().await;
    ExitCode::SUCCESS
}

/// A line-oriented client: stdin lines out as text frames, frames in printed as lines.
async fn connect(url: &str, token: &str) -> ExitCode {
    use futures::{SinkExt, StreamExt};
    use tokio::io::AsyncBufReadExt;
    use tokio_tungstenite::tungstenite::Message;
    let (ws, _) = match tokio_tungstenite::connect_async(format!("{url}/?token={token}")).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("natter-local: cannot connect to {url}: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("connected to {url}; type frames, e.g. {{\"action\":\"sync\"}}");
    let (mut sink, mut stream) = ws.split();
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = lines.next_line() => match line {
                Ok(Some(l)) if !l.trim().is_empty() => {
                    if sink.send(Message::Text(l.into())).await.is_err() {
                        return ExitCode::FAILURE;
                    }
                }
                Ok(Some(_)) => {}
                _ => return ExitCode::SUCCESS,
            },
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(t))) => println!("{t}"),
                Some(Ok(Message::Close(f))) => {
                    eprintln!("closed: {f:?}");
                    return ExitCode::SUCCESS;
                }
                Some(Ok(_)) => {}
                _ => return ExitCode::FAILURE,
            },
        }
    }
}

/// Asks a running natter-local to redrive `queue` and prints what moved.
async fn redrive(url: &str, queue: &str) -> ExitCode {
    use http_body_util::{BodyExt, Full};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<axum::body::Bytes>>();
    let request = axum::http::Request::post(format!("{}/_natter/redrive/{queue}", url.trim_end_matches('/')))
        .body(Full::default());
    let response = match request {
        Ok(r) => client.request(r).await,
        Err(e) => {
            eprintln!("natter-local redrive: {e}");
            return ExitCode::FAILURE;
        }
    };
    match response {
        Ok(r) => {
            let ok = r.status().is_success();
            let body = r.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            let text = String::from_utf8_lossy(&body);
            if ok {
                println!("{text}");
                ExitCode::SUCCESS
            } else {
                eprintln!("natter-local redrive: {text}");
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("natter-local redrive: is natter-local running at {url}? {e}");
            ExitCode::FAILURE
        }
    }
}
