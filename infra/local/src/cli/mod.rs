//! natter-local's command line: the subcommands, one file each, all run on one tokio runtime.

mod coldstart;
mod connect;
mod redrive;
mod serve;

use clap::{Parser, Subcommand};
use natter_core::ids::UserId;
use natter_local::emulator::{self, Emulator, Kind};
use std::{path::PathBuf, process::ExitCode};

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

// Parsed once at start-up: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
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
    /// Move the dead-lettered jobs of QUEUE (e.g. IndexQueue, or its IndexDeadLetterQueue) back to the queue,
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
pub struct Serve {
    /// Port of the WebSocket API and the @connections endpoint.
    #[arg(long, default_value_t = 3001)]
    pub port: u16,
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Which emulator to start when no --endpoint is given: ministack (the default) or moto.
    #[arg(long, env = "NATTER_EMULATOR", default_value_t = Kind::Ministack)]
    pub emulator: Kind,
    /// The account id of the local resources (the emulator natter-local starts is told to use it).
    #[arg(long, env = "NATTER_ACCOUNT", default_value = emulator::DEFAULT_ACCOUNT)]
    pub account: String,
    /// Eventually consistent reads and index queries see the tables this many milliseconds ago, as on DynamoDB
    /// (strongly consistent reads, conditions and transactions see the latest state); 0: no lag.
    #[arg(long, env = "NATTER_LOCAL_READ_LAG_MS", default_value_t = 0)]
    pub read_lag: u64,
    /// New connections per second the account accepts (AWS's default quota is 500); unset: no limit.
    #[arg(long)]
    pub connect_rate: Option<f64>,
    /// @connections requests per second the account accepts (shared with the API's throttle); unset: no limit.
    #[arg(long)]
    pub management_rate: Option<f64>,
    /// Another endpoint for DynamoDB alone (DynamoDB Local, any DynamoDB-compatible engine); the emulator (or
    /// --endpoint) still serves SQS.
    #[arg(long, env = "NATTER_DYNAMODB_ENDPOINT")]
    pub dynamodb_endpoint: Option<String>,
    /// An emulator already running (or `aws` for AWS itself) instead of starting one; it serves SQS, S3, SNS and,
    /// unless --dynamodb-endpoint names another, DynamoDB.
    #[arg(long, visible_alias = "sqs-endpoint", env = "AWS_ENDPOINT_URL")]
    pub endpoint: Option<String>,
    /// The SAM template.
    #[arg(long)]
    pub template: Option<PathBuf>,
    /// Where the function binaries are (target/debug by default).
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// Most instances of one function running at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Pollers per SQS event source.
    #[arg(long, default_value_t = 2)]
    pub pollers: usize,
    /// Seconds without a client frame before a connection is closed (API Gateway: 600).
    #[arg(long, default_value_t = 600)]
    pub idle_timeout: u64,
    /// Seconds a connection may last (API Gateway: 7200).
    #[arg(long, default_value_t = 7200)]
    pub max_duration: u64,
    /// Caps queue visibility timeouts (seconds) so that failed jobs come back quickly.
    #[arg(long)]
    pub max_visibility_timeout: Option<u64>,
    /// Template parameter overrides, KEY=VALUE.
    #[arg(long = "parameter", value_parser = key_value)]
    pub parameters: Vec<(String, String)>,
    /// Run another binary for a function, LOGICALID=PATH.
    #[arg(long = "function-binary", value_parser = key_value)]
    pub binaries: Vec<(String, String)>,
}

fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("`{s}` is not KEY=VALUE"))
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve(cli.serve));
    // The embedded emulator is started from the main thread, which lives as long as natter-local: the kernel
    // stops it when natter-local dies (its parent-death signal follows the thread that spawned it).
    let mut emulator = None;
    let endpoint = match &command {
        Command::Serve(s) => match s.endpoint.as_deref() {
            Some("aws") => None,
            Some(e) => Some(e.to_owned()),
            None => match Emulator::start(s.emulator, &s.account) {
                Ok(m) => {
                    let endpoint = m.endpoint.clone();
                    emulator = Some(m);
                    Some(endpoint)
                }
                Err(e) => {
                    eprintln!("natter-local: {e}");
                    return ExitCode::FAILURE;
                }
            },
        },
        _ => None,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("natter-local: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(run(command, endpoint));
    drop(emulator);
    code
}

async fn run(command: Command, endpoint: Option<String>) -> ExitCode {
    match command {
        Command::Serve(s) => serve::run(s, endpoint).await,
        Command::Token { user, ttl } => match dev_token(&user, ttl) {
            Some(token) => {
                println!("{token}");
                ExitCode::SUCCESS
            }
            None => ExitCode::FAILURE,
        },
        Command::Connect { user, url } => match dev_token(&user, 86_400) {
            Some(token) => connect::connect(&url, &token).await,
            None => ExitCode::FAILURE,
        },
        Command::Redrive { queue, url } => redrive::redrive(&url, &queue).await,
        Command::Coldstart {
            runs,
            bin_dir,
            extra,
            out,
        } => coldstart::run(runs, &bin_dir, extra, out).await,
    }
}

/// A development token for `user` (signed with `NATTER_JWT_SECRET` or the local secret).
fn dev_token(user: &str, ttl: u64) -> Option<String> {
    let Ok(user) = UserId::parse(user) else {
        eprintln!("natter-local: `{user}` is not a valid user id (1-64 characters of A-Z a-z 0-9 _ . -)");
        return None;
    };
    let secret = natter_local::local::dev_secret();
    Some(natter_core::auth::mint(secret.as_bytes(), &user, ttl))
}
