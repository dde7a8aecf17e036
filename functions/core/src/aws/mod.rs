//! The AWS adapters: DynamoDB ([`DynamoStore`]), SQS ([`SqsQueue`]) and the @connections API
//! ([`ApiGatewayPusher`]); the accounting interceptor that feeds each function's meter and the capacity model it
//! prices requests with; and [`wiring`], which builds the clients from the environment once at init. AWS types
//! stop here: the rules see only the ports.

pub mod accounting;
pub mod capacity;
mod dynamo;
mod pusher;
mod s3;
pub mod secrets;
mod sns;
mod sqs;
pub mod wiring;

pub use dynamo::{DynamoStore, stream};
pub use pusher::ApiGatewayPusher;
pub use s3::S3Objects;
pub use sns::SnsNotifier;
pub use sqs::SqsQueue;
pub use wiring::{AwsApp, InitError, sdk_config, sdk_loader};

/// The attribute names of natter's tables, for tools and tests that read items directly.
pub mod attr {
    pub use super::dynamo::items::attr::*;
}

use crate::error::BackendError;
use aws_smithy_runtime_api::client::{orchestrator::HttpResponse, result::SdkError};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Service error codes that mean "this request is wrong", which no retry fixes.
const PERMANENT: [&str; 7] = [
    "ValidationException",
    "ResourceNotFoundException",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "SerializationException",
    "InvalidParameterValue",
    "MissingParameter",
];

/// Turns an SDK error into a [`BackendError`], deciding whether a retry may succeed.
pub(crate) fn call_error<E>(
    service: &'static str,
    operation: &'static str,
    e: SdkError<E, HttpResponse>,
) -> BackendError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let retryable = match &e {
        SdkError::ServiceError(se) => !PERMANENT.contains(&se.err().code().unwrap_or_default()),
        SdkError::ConstructionFailure(_) => false,
        _ => true,
    };
    BackendError::Call {
        service,
        operation,
        retryable,
        source: Box::new(e),
    }
}
