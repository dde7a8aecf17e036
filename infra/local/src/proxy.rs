//! The emulator proxy: every AWS call of the functions (and of natter-local's SQS pollers) goes through it to the
//! emulator. Two reasons:
//!
//! - **Connection reuse.** moto answers every request with `Connection: close`, so without the proxy each call of a
//!   function would open a TCP connection: CPU the function never spends on AWS, where the SDK keeps its
//!   connections alive. The proxy keeps the functions' connections open and pays the emulator's reconnects itself,
//!   so the functions' CPU time per message means what it would on AWS.
//! - **One endpoint per service.** DynamoDB calls can go to another emulator than the rest
//!   ([`Upstreams::dynamodb`], `--dynamodb-endpoint`), so DynamoDB Local or any DynamoDB-compatible engine can
//!   serve DynamoDB while the default emulator serves SQS; the functions keep one endpoint, the proxy.
//! - **Faults on purpose.** [`Faults`] makes the backend unavailable (every call answered 503, as an outage looks
//!   to the SDK after its retries) or throttles DynamoDB (`ProvisionedThroughputExceededException`, which the SDK
//!   retries with backoff), so tests can show what a user sees when AWS misbehaves. Also `POST /_natter/faults`.

use axum::{
    Router,
    body::{Body, Bytes},
    extract::State,
    http::{HeaderValue, Request, Response, StatusCode, Uri},
};
use http_body_util::{BodyExt, Full};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use serde::{Deserialize, Serialize};
use std::sync::{
    Arc, Mutex,
    atomic::{AtomicU64, Ordering},
};
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};

/// Faults the proxy injects, shared with whoever controls them (tests, `POST /_natter/faults`).
#[derive(Debug, Default)]
pub struct Faults {
    state: Mutex<FaultState>,
    /// Calls answered with an injected fault so far.
    injected: AtomicU64,
    /// Calls forwarded to the emulator so far.
    forwarded: AtomicU64,
}

/// What is broken right now.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultState {
    /// Every call fails with 503 (DynamoDB and SQS alike): the backend is down.
    #[serde(default)]
    pub outage: bool,
    /// The next this many DynamoDB calls are throttled.
    #[serde(default)]
    pub throttle_next: u64,
    /// Every DynamoDB call is throttled while set.
    #[serde(default)]
    pub throttle_all: bool,
    /// DynamoDB calls that name one of these tables are throttled while set: one table "down", the rest fine.
    #[serde(default)]
    pub throttle_tables: Vec<String>,
}

impl Faults {
    pub fn set(&self, state: FaultState) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = state;
    }

    pub fn get(&self) -> FaultState {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Backend down (`true`) or back (`false`).
    pub fn outage(&self, down: bool) {
        self.update(|s| s.outage = down);
    }

    /// Throttles the next `n` DynamoDB calls.
    pub fn throttle_next(&self, n: u64) {
        self.update(|s| s.throttle_next = n);
    }

    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::Relaxed)
    }

    pub fn forwarded(&self) -> u64 {
        self.forwarded.load(Ordering::Relaxed)
    }

    fn update(&self, f: impl FnOnce(&mut FaultState)) {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Throttles every DynamoDB call naming one of `tables` (physical names), until cleared with `&[]`.
    pub fn throttle_tables(&self, tables: &[String]) {
        self.update(|s| s.throttle_tables = tables.to_vec());
    }

    /// The fault for a call, if any (a throttle of the next n calls is used up one by one).
    fn decide(&self, dynamodb: bool, body: &[u8]) -> Option<Fault> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let names_table = |t: &String| {
            let quoted = format!("\"{t}\"");
            body.windows(quoted.len()).any(|w| w == quoted.as_bytes())
        };
        let fault = if s.outage {
            Some(Fault::Outage)
        } else if dynamodb && (s.throttle_all || s.throttle_tables.iter().any(names_table)) {
            Some(Fault::Throttle)
        } else if dynamodb && s.throttle_next > 0 {
            s.throttle_next -= 1;
            Some(Fault::Throttle)
        } else {
            None
        };
        if fault.is_some() {
            self.injected.fetch_add(1, Ordering::Relaxed);
        }
        fault
    }
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    Outage,
    Throttle,
}

impl Fault {
    fn response(self) -> Response<Body> {
        let (status, body) = match self {
            Fault::Outage => (
                StatusCode::SERVICE_UNAVAILABLE,
                r#"{"__type":"com.amazon.coral.availability#ServiceUnavailableException","message":"natter-local: backend outage (injected)"}"#,
            ),
            Fault::Throttle => (
                StatusCode::BAD_REQUEST,
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"natter-local: throttled (injected)"}"#,
            ),
        };
        let mut r = Response::new(Body::from(body));
        *r.status_mut() = status;
        r.headers_mut()
            .insert("content-type", HeaderValue::from_static("application/x-amz-json-1.0"));
        r
    }
}

/// Where the proxy forwards: every call to `default`, DynamoDB's to `dynamodb` when it is set, and DynamoDB's
/// eventually consistent reads to `replica` when read lag is on (`lag.rs`).
#[derive(Debug, Clone)]
pub struct Upstreams {
    pub default: String,
    pub dynamodb: Option<String>,
    pub replica: Option<String>,
    /// The functions' IAM policies, enforced on their DynamoDB calls (`iam.rs`); `None` checks nothing.
    pub iam: Option<Arc<crate::iam::Policies>>,
    /// Where SNS publishes to devices are recorded (`notifications.rs`).
    pub notifications: Arc<crate::notifications::Notifications>,
    /// The CORS rules of the stack's buckets, which the proxy enforces (`cors.rs`).
    pub cors: Arc<crate::cors::Cors>,
}

impl Upstreams {
    pub fn one(endpoint: &str) -> Self {
        Self {
            default: endpoint.to_owned(),
            dynamodb: None,
            replica: None,
            iam: None,
            notifications: Default::default(),
            cors: Default::default(),
        }
    }
}

#[derive(Clone)]
struct Proxy {
    default: Uri,
    dynamodb: Uri,
    replica: Option<Uri>,
    client: Client<HttpConnector, Full<Bytes>>,
    faults: Arc<Faults>,
    iam: Option<Arc<crate::iam::Policies>>,
    notifications: Arc<crate::notifications::Notifications>,
    cors: Arc<crate::cors::Cors>,
}

fn uri(endpoint: &str) -> std::io::Result<Uri> {
    endpoint
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{endpoint}: {e}")))
}

/// A running proxy: its URL (give it to the SDK as the endpoint) and its faults.
pub struct EmulatorProxy {
    pub url: String,
    pub faults: Arc<Faults>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl EmulatorProxy {
    /// Listens on a free loopback port and forwards to `upstreams` (`http://host:port`).
    pub async fn start(upstreams: &Upstreams) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let default = uri(&upstreams.default)?;
        let dynamodb = match &upstreams.dynamodb {
            Some(e) => uri(e)?,
            None => default.clone(),
        };
        let faults = Arc::new(Faults::default());
        let proxy = Proxy {
            replica: upstreams.replica.as_deref().map(uri).transpose()?,
            default,
            dynamodb,
            client: Client::builder(TokioExecutor::new()).build_http(),
            faults: faults.clone(),
            iam: upstreams.iam.clone(),
            notifications: upstreams.notifications.clone(),
            cors: upstreams.cors.clone(),
        };
        let app = Router::new().fallback(forward).with_state(proxy);
        let (stop, mut stop_rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stop_rx.wait_for(|s| *s).await;
            };
            let _ = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
        });
        Ok(Self {
            url,
            faults,
            stop,
            task: Some(task),
        })
    }

    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }
}

impl Drop for EmulatorProxy {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

async fn forward(State(p): State<Proxy>, request: Request<Body>) -> Response<Body> {
    let operation = request
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.strip_prefix("DynamoDB_20120810."))
        .map(str::to_owned);
    let dynamodb = operation.is_some();
    let (parts, body) = request.into_parts();
    // A browser's request to one of the stack's buckets: CORS as S3 has it (the emulators allow every origin).
    let bucket = p.cors.bucket_of(parts.uri.path()).map(str::to_owned);
    let origin = parts
        .headers
        .get("origin")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let (Some(bucket), Some(origin), true) = (&bucket, &origin, parts.method == "OPTIONS") {
        return crate::cors::preflight(&p.cors, bucket, origin, &parts.headers);
    }
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return status(StatusCode::BAD_REQUEST, "could not read the request body");
    };
    if let Some(fault) = p.faults.decide(dynamodb, &body) {
        return fault.response();
    }
    if let (Some(op), Some(iam)) = (&operation, &p.iam) {
        let key = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(crate::iam::access_key);
        let json = serde_json::from_slice::<serde_json::Value>(&body).unwrap_or_default();
        if let Some(Err(why)) = key.map(|k| iam.check_dynamodb(k, op, &json)) {
            tracing::warn!("IAM: {why}");
            return access_denied(&why);
        }
    }
    // SNS (form-encoded, awsQuery): publishes to devices are recorded, or refused for a disabled token.
    if let (None, Some(iam)) = (&operation, &p.iam) {
        let authorization = parts.headers.get("authorization").and_then(|v| v.to_str().ok());
        let query = parts.uri.query().unwrap_or_default();
        if let Some(key) = crate::iam::s3_signer(authorization, query)
            && let Err(why) = iam.check_s3(&key, parts.method.as_str(), parts.uri.path())
        {
            tracing::warn!("IAM: {why}");
            let mut r = Response::new(Body::from(format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code><Message>User: {why}</Message></Error>"
            )));
            *r.status_mut() = StatusCode::FORBIDDEN;
            r.headers_mut()
                .insert("content-type", HeaderValue::from_static("application/xml"));
            return r;
        }
    }
    let sns = operation.is_none() && body.starts_with(b"Action=");
    if sns && let crate::notifications::Verdict::Refuse(code, text) = p.notifications.before(&body) {
        let mut r = Response::new(Body::from(text));
        *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
        r.headers_mut()
            .insert("content-type", HeaderValue::from_static("text/xml"));
        return r;
    }
    let request_body = sns.then(|| body.clone());
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let lagging =
        |op: &str| serde_json::from_slice::<serde_json::Value>(&body).is_ok_and(|v| crate::lag::eventual(op, &v));
    let upstream = match (&operation, &p.replica) {
        (Some(op), Some(replica)) if lagging(op) => replica,
        (Some(_), _) => &p.dynamodb,
        (None, _) => &p.default,
    };
    let Ok(uri) = format!("{}{}", upstream.to_string().trim_end_matches('/'), path).parse::<Uri>() else {
        return status(StatusCode::BAD_REQUEST, "bad request path");
    };
    let method = parts.method.to_string();
    let mut out = Request::builder().method(parts.method).uri(uri);
    for (name, value) in &parts.headers {
        // The emulator closes every connection anyway; the caller's connection stays open regardless.
        if name != "connection" {
            out = out.header(name, value);
        }
    }
    let Ok(out) = out.body(Full::new(body)) else {
        return status(StatusCode::BAD_REQUEST, "could not build the request");
    };
    p.faults.forwarded.fetch_add(1, Ordering::Relaxed);
    match p.client.request(out).await {
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            parts.headers.remove("connection");
            if let Some(bucket) = &bucket {
                crate::cors::set_headers(&p.cors, bucket, origin.as_deref(), &method, &mut parts.headers);
            }
            match body.collect().await {
                Ok(b) => {
                    let b = b.to_bytes();
                    if let Some(request) = &request_body {
                        p.notifications.after(request, &b);
                    }
                    Response::from_parts(parts, Body::from(b))
                }
                Err(e) => status(StatusCode::BAD_GATEWAY, &format!("emulator response: {e}")),
            }
        }
        Err(e) => status(StatusCode::BAD_GATEWAY, &format!("emulator: {e}")),
    }
}

/// DynamoDB's answer to a call the caller's policy does not allow.
fn access_denied(why: &str) -> Response<Body> {
    let body = serde_json::json!({
        "__type": "com.amazon.coral.service#AccessDeniedException",
        "Message": format!("User: {why}"),
    });
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = StatusCode::BAD_REQUEST;
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/x-amz-json-1.0"));
    r
}

/// `GET /_natter/faults` shows the faults in force; `POST /_natter/faults` with a [`FaultState`] as JSON sets them
/// (`{}` clears everything), e.g. `curl -d '{"outage":true}' http://127.0.0.1:3001/_natter/faults`.
pub fn control(faults: Arc<Faults>) -> Router {
    async fn show(State(f): State<Arc<Faults>>) -> axum::Json<serde_json::Value> {
        axum::Json(serde_json::json!({
            "faults": f.get(),
            "injected": f.injected(),
            "forwarded": f.forwarded(),
        }))
    }
    async fn set(State(f): State<Arc<Faults>>, axum::Json(state): axum::Json<FaultState>) -> StatusCode {
        tracing::warn!(?state, "emulator faults set");
        f.set(state);
        StatusCode::NO_CONTENT
    }
    Router::new()
        .route("/_natter/faults", axum::routing::get(show).post(set))
        .with_state(faults)
}

fn status(code: StatusCode, message: &str) -> Response<Body> {
    let mut r = Response::new(Body::from(message.to_owned()));
    *r.status_mut() = code;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_throttle_of_the_next_calls_is_used_up_and_spares_sqs() {
        let f = Faults::default();
        f.throttle_next(2);
        assert!(f.decide(false, b"").is_none(), "SQS calls are not throttled");
        assert!(matches!(f.decide(true, b""), Some(Fault::Throttle)));
        assert!(matches!(f.decide(true, b""), Some(Fault::Throttle)));
        assert!(f.decide(true, b"").is_none());
        assert_eq!(f.injected(), 2);
        f.outage(true);
        assert!(matches!(f.decide(false, b""), Some(Fault::Outage)));
        f.outage(false);
        assert!(f.decide(true, b"").is_none());
    }

    #[test]
    fn a_table_throttle_hits_only_calls_naming_that_table() {
        let f = Faults::default();
        f.throttle_tables(&["p_Sessions".to_owned()]);
        assert!(matches!(
            f.decide(true, br#"{"TableName":"p_Sessions"}"#),
            Some(Fault::Throttle)
        ));
        assert!(f.decide(true, br#"{"TableName":"p_SessionsOld"}"#).is_none());
        assert!(f.decide(true, br#"{"TableName":"p_Messages"}"#).is_none());
        f.throttle_tables(&[]);
        assert!(f.decide(true, br#"{"TableName":"p_Sessions"}"#).is_none());
    }
}
