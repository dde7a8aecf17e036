//! The AWS adapters: DynamoDB ([`DynamoStore`]), SQS ([`SqsQueue`]) and the @connections API
//! ([`ApiGatewayPusher`]). AWS types stop here; the rules see only the ports.

pub mod capacity;
mod dynamo;

mod items;
mod pusher;
mod sqs;

pub use dynamo::DynamoStore;
pub use items::attr;
pub use pusher::ApiGatewayPusher;
pub use sqs::SqsQueue;

use crate::{
    config::{Config, ConfigError},
    error::BackendError,
    metrics::Accounting,
    service::App,
};
use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig, retry::RetryConfig, timeout::TimeoutConfig};
use aws_smithy_runtime_api::client::{orchestrator::HttpResponse, result::SdkError};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use std::time::Duration;

/// The rules wired to AWS: what every function runs.
pub type AwsApp = App<DynamoStore, ApiGatewayPusher, SqsQueue>;

/// Loads the SDK configuration once at init, with explicit timeouts and retries: a call that hangs must fail fast
/// enough for the client to get `unavailable` within the function timeout and retry.
pub async fn sdk_config() -> SdkConfig {
    sdk_loader().load().await
}

/// The SDK configuration loader with natter's timeouts and retries; endpoints, region and credentials come from the
/// environment (`AWS_ENDPOINT_URL` for an emulator) unless the caller sets them.
pub fn sdk_loader() -> ConfigLoader {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_millis(1500))
        .operation_attempt_timeout(Duration::from_secs(2))
        .operation_timeout(Duration::from_secs(5))
        .build();
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(timeouts)
        .retry_config(RetryConfig::standard().with_max_attempts(3))
}

/// Why a function could not start.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl AwsApp {
    /// Reads the configuration and builds the clients once; `pushes` requires the management endpoint.
    pub async fn from_env(pushes: bool) -> Result<Self, InitError> {
        let config = Config::from_env()?;
        let sdk = sdk_config().await;
        Self::from_config(&sdk, &config, pushes)
    }

    pub fn from_config(sdk: &SdkConfig, config: &Config, pushes: bool) -> Result<Self, InitError> {
        let pusher = match (&config.management_endpoint, pushes) {
            (Some(endpoint), _) => ApiGatewayPusher::new(sdk, endpoint),
            (None, false) => ApiGatewayPusher::disabled(),
            (None, true) => return Err(ConfigError::Missing("MANAGEMENT_ENDPOINT").into()),
        };
        let schema = capacity::Schema::natter(&config.tables);
        let dynamo = aws_sdk_dynamodb::config::Builder::from(sdk)
            .interceptor(Accounting::new(schema))
            .build();
        let sqs = aws_sdk_sqs::config::Builder::from(sdk)
            .interceptor(Accounting::default())
            .build();
        Ok(App::new(
            DynamoStore::new(
                aws_sdk_dynamodb::Client::from_conf(dynamo),
                config.tables.clone(),
                config.settings.clone(),
            ),
            pusher,
            SqsQueue::new(aws_sdk_sqs::Client::from_conf(sqs), config.queues.clone()),
            config.settings.clone(),
        ))
    }
}

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
