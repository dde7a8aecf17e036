//! moto_server (DynamoDB + SQS) from the project's .venv on a free loopback port, stopped with natter-local (and
//! killed by the kernel if natter-local dies first).

use crate::process::{die_with_parent, free_port, workspace_root};
use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

#[derive(Debug, thiserror::Error)]
pub enum MotoError {
    #[error(
        "moto_server not found (looked at $NATTER_MOTO_SERVER, {0}/.venv/bin/moto_server and PATH); run `make setup`"
    )]
    NotFound(String),
    #[error("could not start moto_server: {0}")]
    Spawn(std::io::Error),
    #[error("moto_server did not answer on {0} within 60 s")]
    NotReady(String),
}

fn find_moto() -> Result<PathBuf, MotoError> {
    if let Some(p) = std::env::var_os("NATTER_MOTO_SERVER") {
        return Ok(PathBuf::from(p));
    }
    let root = workspace_root();
    let venv = root.join(".venv/bin/moto_server");
    if venv.is_file() {
        return Ok(venv);
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join("moto_server"))
                .find(|p| p.is_file())
        })
        .ok_or_else(|| MotoError::NotFound(root.display().to_string()))
}

/// The wrapper that starts moto_server with every DynamoDB operation serialised.
const SERVE_PY: &str = include_str!("moto_serve.py");

pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Moto {
    /// Starts moto_server and waits until it answers. Blocking: call it from a thread that lives as long as the
    /// server should (the parent-death signal follows the spawning thread).
    pub fn start() -> Result<Self, MotoError> {
        let exe = find_moto()?;
        let port = free_port();
        // moto_server's own Python runs it with DynamoDB's isolation restored (moto_serve.py explains); a
        // moto_server without a Python beside it (NATTER_MOTO_SERVER elsewhere) runs as it is.
        let python = exe.with_file_name("python3");
        let mut cmd = if python.is_file() {
            let mut c = Command::new(&python);
            c.args(["-c", SERVE_PY]);
            c
        } else {
            Command::new(&exe)
        };
        // The emulator's own log (every request, and tracebacks of its 500s) when NATTER_MOTO_LOG names a file.
        let log = || -> Stdio {
            std::env::var_os("NATTER_MOTO_LOG")
                .and_then(|p| std::fs::OpenOptions::new().create(true).append(true).open(p).ok())
                .map(Stdio::from)
                .unwrap_or_else(Stdio::null)
        };
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log())
            .stderr(log());
        die_with_parent(&mut cmd);
        let child = cmd.spawn().map_err(MotoError::Spawn)?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        let mut moto = Self { child, endpoint };
        while started.elapsed() < Duration::from_secs(60) {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(moto);
            }
            if let Ok(Some(_)) = moto.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = moto.child.kill();
        Err(MotoError::NotReady(moto.endpoint.clone()))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
