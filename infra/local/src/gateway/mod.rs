//! The WebSocket API as API Gateway runs it, driven by the routes of template.yaml, one file per concern:
//!
//! - [`upgrade`]: the REQUEST authorizer and `$connect` decide the upgrade;
//! - [`session`]: a connection's life: frames routed by the route selection expression (falling back to
//!   `$default`), route responses sent back, the idle timeout and maximum duration, `$disconnect` on close;
//! - [`management`]: the @connections API (POST, GET, DELETE; 410 for unknown ids) on the same port;
//! - [`events`]: the event shapes and request contexts API Gateway gives integrations;
//! - [`throttle`]: the stage's route throttling;
//! - [`reorder`]: a fault that holds frames for a random time, so they overtake each other.
//!
//! API Gateway's limits hold: frames over 32 KB and messages over 128 KB close the connection with 1009.

mod events;
mod management;
mod reorder;
mod session;
mod throttle;
mod upgrade;

pub use throttle::TokenBucket;

use crate::{
    runtime::{Function, InvokeError},
    stack::{ApiSpec, RouteSpec},
};
use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::{Engine, engine::general_purpose::URL_SAFE};
use serde_json::{Map, Value, json};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, atomic::AtomicI64},
    time::Duration,
};
use tokio::sync::mpsc;

/// API Gateway's WebSocket frame limit.
pub const MAX_FRAME_BYTES: usize = 32 * 1024;
/// API Gateway's WebSocket message limit.
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024;

/// Account-level limits of API Gateway that natter-local enforces when set (per second, with a burst of the same).
#[derive(Debug, Clone, Default)]
pub struct AccountLimits {
    /// New connections per second (AWS's default quota: 500 per account and region); beyond it an upgrade is
    /// refused with 429.
    pub connects_per_sec: Option<f64>,
    /// `@connections` requests per second (they share the account's API Gateway throttle); beyond it a call gets
    /// 429 `TooManyRequestsException`, which the SDK retries.
    pub management_per_sec: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct GatewayOptions {
    pub idle_timeout: Duration,
    pub max_duration: Duration,
    pub api_id: String,
    pub region: String,
    pub account: String,
    /// `host:port` the API answers on (`requestContext.domainName`).
    pub domain: String,
    pub limits: AccountLimits,
}

enum Outbound {
    Text(String),
    Close(u16, &'static str),
}

struct Conn {
    id: String,
    tx: mpsc::UnboundedSender<Outbound>,
    connected_at: i64,
    last_active: AtomicI64,
    source_ip: String,
    user_agent: String,
    authorizer: Map<String, Value>,
}

pub struct Gateway {
    api: ApiSpec,
    functions: HashMap<String, Arc<Function>>,
    collector: Arc<crate::stats::Collector>,
    connections: Mutex<HashMap<String, Arc<Conn>>>,
    throttle: Option<Mutex<TokenBucket>>,
    connects: Option<Mutex<TokenBucket>>,
    management: Option<Mutex<TokenBucket>>,
    /// Messages over 128 KB that were not delivered (route responses and @connections posts).
    undelivered: std::sync::atomic::AtomicU64,
    /// The frame reordering fault (off unless set).
    reorder: reorder::Reorder,
    opts: GatewayOptions,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A connection id shaped like API Gateway's (`CsMp3dv4IAMCIeg=`).
fn new_connection_id() -> String {
    URL_SAFE.encode(rand::random::<[u8; 11]>())
}

fn new_request_id() -> String {
    URL_SAFE.encode(rand::random::<[u8; 11]>())
}

fn message(status: StatusCode, text: &str) -> Response {
    (status, Json(json!({ "message": text }))).into_response()
}

fn gone() -> Response {
    (
        StatusCode::GONE,
        [("x-amzn-ErrorType", "GoneException")],
        Json(json!({"message": "Gone"})),
    )
        .into_response()
}

impl Gateway {
    pub fn new(
        api: ApiSpec,
        functions: HashMap<String, Arc<Function>>,
        collector: Arc<crate::stats::Collector>,
        opts: GatewayOptions,
    ) -> Arc<Self> {
        Arc::new(Self {
            functions,
            collector,
            throttle: api
                .rate_limit
                .map(|rate| Mutex::new(TokenBucket::new(rate, api.burst_limit.unwrap_or(rate.ceil() as u64)))),
            connects: opts.limits.connects_per_sec.map(TokenBucket::per_second),
            management: opts.limits.management_per_sec.map(TokenBucket::per_second),
            undelivered: Default::default(),
            reorder: Default::default(),
            api,
            connections: Mutex::new(HashMap::new()),
            opts,
        })
    }

    /// What `GET /_natter/stats` answers.
    pub fn stats(&self) -> Value {
        let functions: Map<String, Value> = self
            .functions
            .iter()
            .map(|(id, f)| (id.clone(), serde_json::to_value(f.stats()).unwrap_or_default()))
            .collect();
        json!({
            "connections": self.connection_count(),
            "undeliveredOver128Kb": self.undelivered.load(std::sync::atomic::Ordering::Relaxed),
            "functions": functions,
            "metrics": self.collector.samples(),
        })
    }

    pub fn router(self: &Arc<Self>) -> Router {
        let stage = format!("/{}", self.api.stage);
        Router::new()
            .route("/", get(upgrade::upgrade))
            .route(&stage, get(upgrade::upgrade))
            .route(
                "/{stage}/@connections/{id}",
                post(management::post_to_connection)
                    .get(management::get_connection)
                    .delete(management::delete_connection),
            )
            .with_state(self.clone())
    }

    /// `GET /_natter/stats` (behind [`crate::guard::local_only`] in natter-local).
    pub fn stats_router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/_natter/stats", get(stats))
            .route("/_natter/reorder", post(reorder::set_reorder))
            .with_state(self.clone())
    }

    /// Holds every client frame and every push for a random time up to `max_ms` (0: off), so frames sent close
    /// together arrive in another order.
    pub fn reorder_frames(&self, max_ms: u64) {
        self.reorder.set(max_ms);
    }

    pub fn connection_count(&self) -> usize {
        lock(&self.connections).len()
    }

    fn route(&self, key: &str) -> Option<&RouteSpec> {
        self.api.routes.iter().find(|r| r.key == key)
    }

    /// Route selection: the value at the selection expression (`$request.body.action`) names the route;
    /// anything else goes to `$default`.
    fn select_route(&self, body: &str) -> Option<&RouteSpec> {
        let key = self
            .api
            .route_selection
            .strip_prefix("$request.body.")
            .and_then(|path| {
                let v: Value = serde_json::from_str(body).ok()?;
                let mut cur = &v;
                for part in path.split('.') {
                    cur = cur.get(part)?;
                }
                cur.as_str().map(str::to_owned)
            });
        key.as_deref()
            .filter(|k| !k.starts_with('$'))
            .and_then(|k| self.route(k))
            .or_else(|| self.route("$default"))
    }

    async fn invoke(&self, function: &str, event: &Value) -> Result<Value, InvokeError> {
        match self.functions.get(function) {
            Some(f) => f.invoke(event).await,
            None => Err(InvokeError::Spawn(format!("no function {function}"))),
        }
    }
}

async fn stats(State(gw): State<Arc<Gateway>>) -> Response {
    Json(gw.stats()).into_response()
}
