//! The emulator under natter-local: what serves DynamoDB and SQS (and S3, SNS) locally, and the SDK
//! configuration that points at one.
//!
//! Two are supported, as processes natter-local starts on a free loopback port and stops with itself:
//! [`Kind::Ministack`] (the default: MiniStack from `.venv-ministack`, faster, reports capacity as AWS does and
//! expires TTL items) and [`Kind::Moto`] (moto_server from `.venv`, with natter's transaction wrapper). Any other
//! emulator, or AWS, can be named by endpoint instead.

mod ministack;
mod moto;

use crate::process::{die_with_parent, free_port, workspace_root};
use aws_config::SdkConfig;
use aws_sdk_dynamodb::config::{Credentials, Region};
use std::{
    path::PathBuf,
    process::{Child, Stdio},
    time::{Duration, Instant},
};

/// The account id natter-local's resources live in, unless told otherwise (`--account`): the emulators are
/// started with it, so ARNs built locally and ARNs the emulator reports agree.
pub const DEFAULT_ACCOUNT: &str = "000000000000";
/// The region natter-local uses with an emulator.
pub const DEFAULT_REGION: &str = "us-east-1";

/// Which emulator to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kind {
    #[default]
    Ministack,
    Moto,
}

impl std::str::FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ministack" => Ok(Self::Ministack),
            "moto" => Ok(Self::Moto),
            other => Err(format!("unknown emulator `{other}`: ministack or moto")),
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Ministack => "ministack",
            Self::Moto => "moto",
        })
    }
}

impl Kind {
    /// The emulator named by `NATTER_EMULATOR`, else the default.
    pub fn from_env() -> Result<Self, String> {
        match std::env::var("NATTER_EMULATOR") {
            Ok(v) if !v.is_empty() => v.parse(),
            _ => Ok(Self::default()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("{program} not found (looked at {looked}); run `make setup`")]
    NotFound { program: &'static str, looked: String },
    #[error("could not start {0}: {1}")]
    Spawn(Kind, std::io::Error),
    #[error("{0} did not answer on {1} within 60 s")]
    NotReady(Kind, String),
}

/// A running emulator process.
pub struct Emulator {
    pub kind: Kind,
    pub endpoint: String,
    pub account: String,
    child: Child,
}

impl Emulator {
    /// Starts an emulator and waits until it answers. Blocking: call it from a thread that lives as long as the
    /// server should (the parent-death signal follows the spawning thread).
    pub fn start(kind: Kind, account: &str) -> Result<Self, EmulatorError> {
        let port = free_port();
        let mut cmd = match kind {
            Kind::Moto => moto::command(port, account)?,
            Kind::Ministack => ministack::command(port, account)?,
        };
        // The emulator's own log (every request, and tracebacks of its 500s) when NATTER_EMULATOR_LOG names a file.
        let log = || -> Stdio {
            std::env::var_os("NATTER_EMULATOR_LOG")
                .and_then(|p| std::fs::OpenOptions::new().create(true).append(true).open(p).ok())
                .map(Stdio::from)
                .unwrap_or_else(Stdio::null)
        };
        cmd.stdin(Stdio::null()).stdout(log()).stderr(log());
        die_with_parent(&mut cmd);
        let child = cmd.spawn().map_err(|e| EmulatorError::Spawn(kind, e))?;
        let mut emulator = Self {
            kind,
            endpoint: format!("http://127.0.0.1:{port}"),
            account: account.to_owned(),
            child,
        };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(emulator);
            }
            if let Ok(Some(_)) = emulator.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = emulator.child.kill();
        Err(EmulatorError::NotReady(kind, emulator.endpoint.clone()))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A program of the project's virtual environments: `$override` if set, else `.venv*/bin/{name}` under the
/// workspace, else the PATH.
fn find_program(program: &'static str, override_var: &str, venv: &str) -> Result<PathBuf, EmulatorError> {
    if let Some(p) = std::env::var_os(override_var) {
        return Ok(PathBuf::from(p));
    }
    let root = workspace_root();
    let in_venv = root.join(venv).join("bin").join(program);
    if in_venv.is_file() {
        return Ok(in_venv);
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join(program))
                .find(|p| p.is_file())
        })
        .ok_or_else(|| EmulatorError::NotFound {
            program,
            looked: format!("${override_var}, {} and PATH", in_venv.display()),
        })
}

/// An SDK configuration pointed at `endpoint` with dummy credentials, natter's timeouts and retries.
pub async fn sdk_for(endpoint: &str) -> SdkConfig {
    natter_core::aws::sdk_loader()
        .endpoint_url(endpoint)
        .region(Region::new(DEFAULT_REGION))
        .credentials_provider(Credentials::new("test", "test", None, None, "natter-local"))
        .load()
        .await
}
