//! moto_server (DynamoDB, SQS, S3, SNS) from the project's `.venv`, run through natter's wrapper
//! (`moto_serve.py`: DynamoDB's transaction isolation restored, item-level rollback).

use super::{EmulatorError, find_program};
use std::process::Command;

/// The wrapper that starts moto_server with every DynamoDB operation serialised.
const SERVE_PY: &str = include_str!("moto_serve.py");

pub(super) fn command(port: u16, account: &str) -> Result<Command, EmulatorError> {
    let exe = find_program("moto_server", "NATTER_MOTO_SERVER", ".venv")?;
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
    cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .env("MOTO_ACCOUNT_ID", account);
    Ok(cmd)
}
