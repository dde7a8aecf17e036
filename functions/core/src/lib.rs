//! natter-core: everything natter's Lambda functions share.
//!
//! - [`ids`]: validated identifiers and the message body (made only through `parse`).
//! - [`frames`]: the wire protocol: client frames (one enum tagged by `action`), replies and pushes.
//! - [`model`]: the domain records the rules work on.
//! - [`ports`]: the small async traits the rules need (stores, pusher, queue); [`aws`] implements them.
//! - [`service`]: the rules: connect, send, ack, history indexing, ...
//! - [`lambda`]: glue between API Gateway / SQS events and the rules; each function's handler is thin.
//! - [`auth`]: verifying connection tokens (HS256 JWT), and minting development tokens.
//! - [`metrics`]: AWS-call accounting per invocation, written as CloudWatch Embedded Metric Format.
//! - [`config`]: settings read from the environment once at init.

#[cfg(feature = "auth")]
pub mod auth;
#[cfg(feature = "aws")]
pub mod aws;
pub mod config;
pub mod error;
pub mod frames;
pub mod ids;
pub mod jobs;
#[cfg(feature = "aws")]
pub mod lambda;
#[cfg(feature = "aws")]
pub mod metrics;
/// Without the AWS parts there is no invocation to account for.
#[cfg(not(feature = "aws"))]
pub(crate) mod metrics {
    pub fn set_kind(_kind: &str) {}
}
pub mod model;
pub mod ports;
pub mod service;

#[cfg(test)]
pub(crate) mod memory;

/// Milliseconds since the epoch, the protocol's unit of time.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
