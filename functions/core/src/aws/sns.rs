//! [`Notifier`] on SNS mobile push: one platform application per platform (template parameters), one platform
//! endpoint per registered device, and a publish to each endpoint. The message is SNS's per-platform JSON: a
//! title and a text for the system to show, and the conversation to open; never a message body.

use super::call_error;
use crate::{
    error::BackendError,
    notify::{Device, DeviceToken, Notification, Notifier, Platform, Published, Res},
};
use aws_sdk_sns::operation::publish::PublishError;
use futures::future::BoxFuture;
use serde_json::json;
use std::collections::HashMap;

pub struct SnsNotifier {
    client: aws_sdk_sns::Client,
    applications: HashMap<Platform, String>,
}

impl SnsNotifier {
    /// A notifier for the platforms that have an application.
    pub fn new(client: aws_sdk_sns::Client, applications: HashMap<Platform, String>) -> Self {
        Self { client, applications }
    }
}

/// SNS's message: the default text, and each platform's own payload as a JSON string.
fn message(n: &Notification) -> String {
    let data = if n.group {
        json!({"conversation": n.conversation, "group": true, "user": n.user})
    } else {
        json!({"conversation": n.conversation, "user": n.user})
    };
    json!({
        "default": format!("{}: {}", n.title, n.text),
        "GCM": json!({"notification": {"title": n.title, "body": n.text}, "data": data}).to_string(),
        "APNS": json!({"aps": {"alert": {"title": n.title, "body": n.text}}, "natter": data}).to_string(),
    })
    .to_string()
}

impl Notifier for SnsNotifier {
    fn supports(&self, platform: Platform) -> bool {
        self.applications.contains_key(&platform)
    }

    fn create_endpoint<'a>(&'a self, platform: Platform, token: &'a DeviceToken) -> BoxFuture<'a, Res<String>> {
        Box::pin(async move {
            let app = self
                .applications
                .get(&platform)
                .ok_or_else(|| BackendError::corrupt("notifier", "no application for this platform"))?;
            let r = self
                .client
                .create_platform_endpoint()
                .platform_application_arn(app)
                .token(token.as_str())
                .send()
                .await
                .map_err(|e| call_error("SNS", "CreatePlatformEndpoint", e))?;
            r.endpoint_arn
                .ok_or_else(|| BackendError::corrupt("SNS", "CreatePlatformEndpoint returned no endpoint"))
        })
    }

    fn delete_endpoint<'a>(&'a self, endpoint: &'a str) -> BoxFuture<'a, Res<()>> {
        Box::pin(async move {
            self.client
                .delete_endpoint()
                .endpoint_arn(endpoint)
                .send()
                .await
                .map(drop)
                .map_err(|e| call_error("SNS", "DeleteEndpoint", e))
        })
    }

    fn publish<'a>(&'a self, device: &'a Device, n: &'a Notification) -> BoxFuture<'a, Res<Published>> {
        Box::pin(async move {
            let r = self
                .client
                .publish()
                .target_arn(&device.endpoint)
                .message_structure("json")
                .message(message(n))
                .send()
                .await;
            match r {
                Ok(_) => Ok(Published::Sent),
                // The platform told SNS the token is dead (the app was uninstalled or the token rotated).
                Err(e) if matches!(e.as_service_error(), Some(PublishError::EndpointDisabledException(_))) => {
                    Ok(Published::Disabled)
                }
                Err(e) => Err(call_error("SNS", "Publish", e)),
            }
        })
    }
}
