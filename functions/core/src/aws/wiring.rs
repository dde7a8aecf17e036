//! The composition root: the SDK configuration and the clients, built once at init from the environment, wired
//! into the rules with one meter that every client's accounting interceptor feeds.

use super::{ApiGatewayPusher, DynamoStore, SqsQueue, accounting::Accounting, capacity::Schema};
use crate::{
    config::{Config, ConfigError},
    meter::Meter,
    service::App,
};
use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig, retry::RetryConfig, timeout::TimeoutConfig};
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

/// The longest init waits for its connections to open (see [`AwsApp::warm_up`]).
pub const WARM_UP_BUDGET: Duration = Duration::from_millis(1500);

/// `false` skips [`AwsApp::warm_up`] (to measure what it costs: `bench/init_time.py`).
pub const WARM_UP_VAR: &str = "WARM_UP_CONNECTIONS";

/// Why a function could not start.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Secret(String),
}

/// The variable naming the Secrets Manager secret that seals cursors. Every function that issues or takes cursors
/// (sync, history, group list) has it; without it, cursors would not open in another instance of the function.
pub const CURSOR_KEY_ARN: &str = "CURSOR_KEY_ARN";

impl AwsApp {
    /// Reads the configuration and builds the clients once; `pushes` requires the management endpoint.
    pub async fn from_env(pushes: bool) -> Result<Self, InitError> {
        let mut config = Config::from_env()?;
        let sdk = sdk_config().await;
        if let Some(arn) = std::env::var(CURSOR_KEY_ARN).ok().filter(|a| !a.is_empty()) {
            let value = super::secrets::secret_string(&sdk, "cursor key", &arn)
                .await
                .map_err(InitError::Secret)?;
            config.settings.cursor_key = crate::seal::CursorKey::from_secret(&value).map_err(InitError::Secret)?;
        }
        let app = Self::from_config(&sdk, &config, pushes, Meter::for_this_function())?;
        if std::env::var(WARM_UP_VAR).map_or(true, |v| v != "false") {
            app.warm_up().await;
        }
        Ok(app)
    }

    /// Opens the connections the first invocation would otherwise open on the user's time: one refused request
    /// per client (DynamoDB, SQS, @connections), together, at most [`WARM_UP_BUDGET`]. A cold Rust function at
    /// 128 MB was measured spending about 900 ms on its first DynamoDB call, nearly all TLS handshake: the
    /// handshake's CPU is cheap during init, which Lambda runs at full CPU, and dear in a throttled invocation.
    /// Each request is refused before anything is read, written or authorised (a batch of nothing, a post to an
    /// impossible connection id), so it needs no permission and costs nothing but the request; the only trace
    /// is one error in each service's request metrics per cold start. Failures are ignored: the invocation then
    /// opens the connection as before.
    pub async fn warm_up(&self) {
        let all = async {
            futures::join!(self.store.warm_up(), self.queue.warm_up(), self.pusher.warm_up());
        };
        if tokio::time::timeout(WARM_UP_BUDGET, all).await.is_err() {
            tracing::warn!("opening connections at init took longer than {WARM_UP_BUDGET:?}; left to the invocations");
        }
    }

    /// The rules on clients built from `sdk` for `config`, all accounted on `meter`.
    pub fn from_config(sdk: &SdkConfig, config: &Config, pushes: bool, meter: Meter) -> Result<Self, InitError> {
        let pusher = match (&config.management_endpoint, pushes) {
            (Some(endpoint), _) => ApiGatewayPusher::new(sdk, endpoint, Accounting::calls_only(meter.clone())),
            (None, false) => ApiGatewayPusher::disabled(),
            (None, true) => return Err(ConfigError::Missing("MANAGEMENT_ENDPOINT").into()),
        };
        let dynamo = aws_sdk_dynamodb::config::Builder::from(sdk)
            .interceptor(Accounting::new(meter.clone(), Schema::natter(&config.tables)))
            .build();
        let sqs = aws_sdk_sqs::config::Builder::from(sdk)
            .interceptor(Accounting::calls_only(meter.clone()))
            .build();
        // Only the functions that register devices or publish to them name a platform application: the others
        // build no SNS client at init.
        let notifier = (!config.platform_applications.is_empty()).then(|| {
            let sns = aws_sdk_sns::config::Builder::from(sdk)
                .interceptor(Accounting::calls_only(meter.clone()))
                .build();
            super::SnsNotifier::new(
                aws_sdk_sns::Client::from_conf(sns),
                config.platform_applications.clone(),
            )
        });
        // Likewise only the functions that sign or check attachments name the bucket.
        let objects = config.attachment_bucket.clone().map(|bucket| {
            let s3 = aws_sdk_s3::config::Builder::from(sdk)
                .interceptor(Accounting::calls_only(meter.clone()))
                // An emulator serves buckets by path (`http://host:port/bucket/key`), AWS by host name.
                .force_path_style(sdk.endpoint_url().is_some())
                // No checksum of an empty body signed into presigned uploads (the client sends the bytes).
                .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired)
                .build();
            super::S3Objects::new(aws_sdk_s3::Client::from_conf(s3), bucket)
        });
        let app = App::new(
            DynamoStore::new(
                aws_sdk_dynamodb::Client::from_conf(dynamo),
                config.tables.clone(),
                config.settings.clone(),
            ),
            pusher,
            SqsQueue::new(aws_sdk_sqs::Client::from_conf(sqs), config.queues.clone()),
            config.settings.clone(),
        )
        .with_meter(meter);
        let app = match notifier {
            Some(n) => app.with_notifier(std::sync::Arc::new(n)),
            None => app,
        };
        Ok(match objects {
            Some(o) => app.with_objects(std::sync::Arc::new(o)),
            None => app,
        })
    }
}
