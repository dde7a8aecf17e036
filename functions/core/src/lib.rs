//! natter-core: everything natter's Lambda functions share.
//!
//! - [`ids`]: validated identifiers and the message body (made only through `parse`).
//! - [`frames`]: the wire protocol: client frames (one enum tagged by `action`, one file per action), replies
//!   (one envelope with the `requestId`) and pushes.
//! - [`model`]: the domain records the rules work on; [`jobs`]: what one function queues for another.
//! - [`ports`]: the small async traits the rules need (stores, pusher, queue); [`aws`] implements them.
//! - [`service`]: the rules, one file per action or consumer, on `App` (the ports and settings).
//! - [`lambda`]: glue between API Gateway / SQS events and the rules; each function's handler is thin.
//! - [`attachments`]: attachment ids, content types and the object-storage port (presigned uploads and downloads).
//! - [`auth`]: verifying connection tokens (HS256 JWT), and minting development tokens.
//! - [`meter`]: AWS-call accounting per invocation, written as CloudWatch Embedded Metric Format.
//! - [`config`]: settings read from the environment once at init.
//! - [`testing`] (feature `testing`): in-memory fakes of the ports, a test-app builder, the ports' contract suite.

pub mod attachments;
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
pub mod meter;
pub mod model;
pub mod notify;
pub mod ports;
pub mod seal;
pub mod service;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

/// Milliseconds since the epoch, the protocol's unit of time.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
