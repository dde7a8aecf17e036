//! Posts to WebSocket connections through API Gateway's @connections API.

use super::call_error;
use crate::{
    error::BackendError,
    ids::ConnectionId,
    ports::{Posted, Pusher, Res},
};
use aws_config::SdkConfig;
use aws_sdk_apigatewaymanagement::Client;
use aws_smithy_types::Blob;

/// The @connections client, built once at init from the management endpoint in the environment (built in the
/// template from the API id, region and stage, so custom domains don't break it).
#[derive(Clone)]
pub struct ApiGatewayPusher {
    client: Option<Client>,
}

impl ApiGatewayPusher {
    pub fn new(sdk: &SdkConfig, endpoint: &str, accounting: super::accounting::Accounting) -> Self {
        let config = aws_sdk_apigatewaymanagement::config::Builder::from(sdk)
            .endpoint_url(endpoint)
            .interceptor(accounting)
            .build();
        Self {
            client: Some(Client::from_conf(config)),
        }
    }

    /// Opens the client's connection (TLS on AWS) at init: a post to a connection id API Gateway never issues
    /// (`:` is not in its alphabet), which it refuses without sending anything (see `wiring::warm_up`; only the
    /// connection matters).
    pub(crate) async fn warm_up(&self) {
        let Some(client) = &self.client else {
            return;
        };
        let _refused = client
            .post_to_connection()
            .connection_id("warm:up")
            .data(Blob::new(Vec::new()))
            .customize()
            .config_override(
                aws_sdk_apigatewaymanagement::config::Builder::default()
                    .retry_config(aws_config::retry::RetryConfig::disabled()),
            )
            .send()
            .await;
    }

    /// For functions that never push.
    pub fn disabled() -> Self {
        Self { client: None }
    }

    fn client(&self) -> Res<&Client> {
        self.client
            .as_ref()
            .ok_or_else(|| BackendError::corrupt("configuration", "this function has no MANAGEMENT_ENDPOINT"))
    }

    /// Closes a connection (API Gateway then invokes `$disconnect`).
    pub async fn close(&self, connection: &ConnectionId) -> Res<Posted> {
        match self
            .client()?
            .delete_connection()
            .connection_id(connection.as_str())
            .send()
            .await
        {
            Ok(_) => Ok(Posted::Delivered),
            Err(e) if e.as_service_error().is_some_and(|x| x.is_gone_exception()) => Ok(Posted::Gone),
            Err(e) => Err(call_error("ApiGatewayManagement", "DeleteConnection", e)),
        }
    }
}

impl Pusher for ApiGatewayPusher {
    async fn post(&self, connection: &ConnectionId, frame: &str) -> Res<Posted> {
        let r = self
            .client()?
            .post_to_connection()
            .connection_id(connection.as_str())
            .data(Blob::new(frame.as_bytes()))
            .send()
            .await;
        match r {
            Ok(_) => Ok(Posted::Delivered),
            Err(e) if e.as_service_error().is_some_and(|x| x.is_gone_exception()) => Ok(Posted::Gone),
            Err(e) => Err(call_error("ApiGatewayManagement", "PostToConnection", e)),
        }
    }
}
