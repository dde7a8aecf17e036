//! MiniStack (PyPI `ministack`, MIT) from the project's `.venv-ministack`: DynamoDB, DynamoDB Streams, SQS, S3,
//! SNS, STS and Secrets Manager in one process. It has a venv of its own because it pins botocore exactly, which
//! aws-sam-cli (in `.venv`) does not accept.

use super::{EmulatorError, find_program};
use std::process::Command;

/// The services natter uses; MiniStack loads only these.
const SERVICES: &str = "dynamodb,dynamodbstreams,sqs,s3,sns,sts,iam,secretsmanager";

pub(super) fn command(port: u16, account: &str) -> Result<Command, EmulatorError> {
    let mut cmd = Command::new(find_program("ministack", "NATTER_MINISTACK", ".venv-ministack")?);
    cmd.env("GATEWAY_PORT", port.to_string())
        .env("BIND_HOST", "127.0.0.1")
        .env("MINISTACK_HOST", "127.0.0.1")
        .env("MINISTACK_ACCOUNT_ID", account)
        .env("MINISTACK_REGION", super::DEFAULT_REGION)
        .env("SERVICES", SERVICES)
        .env("LOG_LEVEL", "WARNING")
        // Its PID file goes to TMPDIR; one per port, so parallel test binaries do not collide.
        .env("TMPDIR", std::env::temp_dir());
    Ok(cmd)
}
