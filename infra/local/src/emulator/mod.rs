//! The emulator under natter-local: what serves DynamoDB and SQS locally ([`Moto`], moto_server from the
//! project's .venv, by default), and the SDK configuration that points at one.

mod moto;

pub use moto::{Moto, MotoError};

use aws_config::SdkConfig;
use aws_sdk_dynamodb::config::{Credentials, Region};

/// An SDK configuration pointed at `endpoint` with dummy credentials, natter's timeouts and retries.
pub async fn sdk_for(endpoint: &str) -> SdkConfig {
    natter_core::aws::sdk_loader()
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "natter-local"))
        .load()
        .await
}
