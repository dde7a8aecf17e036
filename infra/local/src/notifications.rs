//! Push notifications, as natter-local shows them. The functions talk to the emulator's SNS through the proxy
//! (`proxy.rs`), which hands every SNS call here on its way: `CreatePlatformEndpoint` teaches which endpoint is
//! which platform and token, and each `Publish` to an endpoint is recorded as the notification a phone would have
//! shown. `GET /_natter/notifications` lists them, oldest first; `POST /_natter/notifications/disable` with
//! `{"token": T}` makes SNS answer that token's publishes `EndpointDisabled`, as it does once FCM or APNs report
//! an app uninstalled.
//!
//! The emulators accept a publish to a platform endpoint and deliver nothing, so this record is the only place a
//! test can see what would have reached a device.

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    routing::{get, post},
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

/// One notification as a device would have shown it.
#[derive(Debug, Clone, Serialize)]
pub struct Sent {
    pub user: String,
    pub platform: String,
    pub token: String,
    pub title: String,
    pub text: String,
    pub conversation: String,
    pub at: i64,
}

#[derive(Debug, Default)]
struct Record {
    /// Endpoint ARN -> (platform, token).
    endpoints: HashMap<String, (String, String)>,
    disabled: HashSet<String>,
    sent: Vec<Sent>,
}

#[derive(Debug, Default)]
pub struct Notifications(Mutex<Record>);

/// What the proxy should do with an SNS call.
pub enum Verdict {
    Forward,
    /// Answer with this error instead (status, body).
    Refuse(u16, String),
}

fn form(body: &[u8]) -> HashMap<String, String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .unwrap_or_default()
        .into_iter()
        .collect()
}

/// The platform an application ARN (`...:app/GCM/name`) is for, as natter names it.
fn platform_of(app_arn: &str) -> String {
    match app_arn.split(":app/").nth(1).and_then(|r| r.split('/').next()) {
        Some("GCM") => "fcm".into(),
        Some("APNS" | "APNS_SANDBOX") => "apns".into(),
        Some(other) => other.to_lowercase(),
        None => "unknown".into(),
    }
}

impl Notifications {
    fn lock(&self) -> std::sync::MutexGuard<'_, Record> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Looks at an SNS request before it is forwarded.
    pub fn before(&self, body: &[u8]) -> Verdict {
        let f = form(body);
        if f.get("Action").map(String::as_str) != Some("Publish") {
            return Verdict::Forward;
        }
        let Some(target) = f.get("TargetArn") else {
            return Verdict::Forward;
        };
        let mut s = self.lock();
        let Some((platform, token)) = s.endpoints.get(target).cloned() else {
            return Verdict::Forward;
        };
        if s.disabled.contains(&token) {
            return Verdict::Refuse(
                400,
                "<ErrorResponse><Error><Type>Sender</Type><Code>EndpointDisabled</Code><Message>Endpoint is disabled</Message></Error><RequestId>natter-local</RequestId></ErrorResponse>".into(),
            );
        }
        let message: Value = serde_json::from_str(f.get("Message").map_or("", String::as_str)).unwrap_or_default();
        let gcm: Value = serde_json::from_str(message["GCM"].as_str().unwrap_or("{}")).unwrap_or_default();
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        s.sent.push(Sent {
            user: text(&gcm["data"]["user"]),
            platform,
            token,
            title: text(&gcm["notification"]["title"]),
            text: text(&gcm["notification"]["body"]),
            conversation: text(&gcm["data"]["conversation"]),
            at: natter_core::now_ms(),
        });
        Verdict::Forward
    }

    /// Looks at an SNS call's answer: learns the endpoint a `CreatePlatformEndpoint` made.
    pub fn after(&self, request: &[u8], response: &[u8]) {
        let f = form(request);
        if f.get("Action").map(String::as_str) != Some("CreatePlatformEndpoint") {
            return;
        }
        let text = String::from_utf8_lossy(response);
        let arn = text
            .split("<EndpointArn>")
            .nth(1)
            .and_then(|r| r.split("</EndpointArn>").next());
        if let (Some(arn), Some(app), Some(token)) = (arn, f.get("PlatformApplicationArn"), f.get("Token")) {
            self.lock()
                .endpoints
                .insert(arn.to_owned(), (platform_of(app), token.clone()));
        }
    }

    pub fn sent(&self) -> Vec<Sent> {
        self.lock().sent.clone()
    }

    pub fn disable(&self, token: &str) {
        self.lock().disabled.insert(token.to_owned());
    }

    /// `GET /_natter/notifications` and `POST /_natter/notifications/disable`.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/_natter/notifications", get(list))
            .route("/_natter/notifications/disable", post(disable))
            .with_state(self)
    }
}

async fn list(State(n): State<Arc<Notifications>>) -> Json<Vec<Sent>> {
    Json(n.sent())
}

#[derive(Deserialize)]
struct Disable {
    token: String,
}

async fn disable(State(n): State<Arc<Notifications>>, Json(d): Json<Disable>) -> StatusCode {
    n.disable(&d.token);
    StatusCode::NO_CONTENT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_publish_to_a_known_endpoint_is_recorded_and_a_disabled_token_refused() {
        let n = Notifications::default();
        n.after(
            b"Action=CreatePlatformEndpoint&PlatformApplicationArn=arn%3Aaws%3Asns%3Aus-east-1%3A1%3Aapp%2FGCM%2Fx&Token=tok",
            b"<CreatePlatformEndpointResult><EndpointArn>arn:e/1</EndpointArn></CreatePlatformEndpointResult>",
        );
        let message = serde_json::json!({"default": "alice: 1 new message", "GCM": serde_json::json!({"notification": {"title": "alice", "body": "1 new message"}, "data": {"user": "bob", "conversation": "alice"}}).to_string()}).to_string();
        let body =
            serde_urlencoded::to_string([("Action", "Publish"), ("TargetArn", "arn:e/1"), ("Message", &message)])
                .unwrap();
        assert!(matches!(n.before(body.as_bytes()), Verdict::Forward));
        let sent = n.sent();
        assert_eq!(sent.len(), 1);
        assert_eq!(
            (
                sent[0].user.as_str(),
                sent[0].platform.as_str(),
                sent[0].token.as_str(),
                sent[0].text.as_str()
            ),
            ("bob", "fcm", "tok", "1 new message")
        );
        n.disable("tok");
        assert!(matches!(n.before(body.as_bytes()), Verdict::Refuse(400, _)));
        assert_eq!(n.sent().len(), 1, "a refused publish shows nothing");
    }
}
