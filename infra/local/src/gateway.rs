//! The WebSocket API as API Gateway runs it, driven by the routes of template.yaml: the REQUEST authorizer and
//! `$connect` decide the upgrade; frames are routed by the route selection expression (falling back to
//! `$default`); a route with a route response sends the integration's body back; `$disconnect` runs on close.
//! The @connections management API (POST, GET, DELETE; 410 for unknown ids) is served on the same port.
//! API Gateway's limits hold: frames over 32 KB and messages over 128 KB close the connection with 1009, and
//! connections close after the idle timeout (10 min) or the maximum duration (2 h).

use crate::{
    runtime::{Function, InvokeError},
    stack::{ApiSpec, RouteSpec},
    time::{iso8601, request_time},
};
use axum::{
    Json, Router,
    body::Bytes,
    extract::{
        ConnectInfo, Path, Query, State,
        ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection},
    },
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::{Engine, engine::general_purpose::URL_SAFE};
use futures::{SinkExt, StreamExt};
use serde_json::{Map, Value, json};
use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};
use tokio::sync::mpsc;
use tracing::{info, warn};

/// API Gateway's WebSocket frame limit.
pub const MAX_FRAME_BYTES: usize = 32 * 1024;
/// API Gateway's WebSocket message limit.
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024;

#[derive(Debug, Clone)]
pub struct GatewayOptions {
    pub idle_timeout: Duration,
    pub max_duration: Duration,
    pub api_id: String,
    pub region: String,
    pub account: String,
    /// `host:port` the API answers on (`requestContext.domainName`).
    pub domain: String,
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
    opts: GatewayOptions,
}

/// The stage's route throttling (`DefaultRouteSettings.ThrottlingRateLimit/BurstLimit`): a token bucket shared by
/// every connection, as API Gateway applies it per stage. Frames over it get API Gateway's `Too Many Requests`
/// answer and never reach a function.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: tokio::time::Instant,
}

impl TokenBucket {
    pub fn new(rate: f64, burst: u64) -> Self {
        let burst = burst.max(1) as f64;
        Self {
            rate: rate.max(0.0),
            burst,
            tokens: burst,
            last: tokio::time::Instant::now(),
        }
    }

    /// Takes a token at `now` if there is one.
    pub fn take(&mut self, now: tokio::time::Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now.max(self.last);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
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
            "functions": functions,
            "metrics": self.collector.samples(),
        })
    }

    pub fn router(self: &Arc<Self>) -> Router {
        let stage = format!("/{}", self.api.stage);
        Router::new()
            .route("/", get(upgrade))
            .route(&stage, get(upgrade))
            .route(
                "/{stage}/@connections/{id}",
                post(post_to_connection).get(get_connection).delete(delete_connection),
            )
            .route("/_natter/stats", get(stats))
            .with_state(self.clone())
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

    fn context(&self, route: &str, event_type: &str, conn_id: &str, connected_at: i64, ip: &str, ua: &str) -> Value {
        let now = natter_core::now_ms();
        let request_id = new_request_id();
        json!({
            "routeKey": route,
            "eventType": event_type,
            "extendedRequestId": request_id,
            "requestTime": request_time(now),
            "messageDirection": "IN",
            "stage": self.api.stage,
            "connectedAt": connected_at,
            "requestTimeEpoch": now,
            "identity": {"userAgent": ua, "sourceIp": ip},
            "requestId": request_id,
            "domainName": self.opts.domain,
            "connectionId": conn_id,
            "apiId": self.opts.api_id,
        })
    }

    async fn invoke(&self, function: &str, event: &Value) -> Result<Value, InvokeError> {
        match self.functions.get(function) {
            Some(f) => f.invoke(event).await,
            None => Err(InvokeError::Spawn(format!("no function {function}"))),
        }
    }

    /// A frame from the client: route it, invoke, answer through the route response or an error frame.
    async fn handle_frame(self: Arc<Self>, conn: Arc<Conn>, body: String, binary: bool) {
        if let Some(bucket) = &self.throttle
            && !lock(bucket).take(tokio::time::Instant::now())
        {
            let _ = conn.tx.send(Outbound::Text(
                json!({"message": "Too Many Requests", "connectionId": conn.id, "requestId": new_request_id()})
                    .to_string(),
            ));
            return;
        }
        let Some(route) = self.select_route(&body).cloned() else {
            let _ = conn.tx.send(Outbound::Text(
                json!({"message": "Forbidden", "connectionId": conn.id}).to_string(),
            ));
            return;
        };
        let mut ctx = self.context(
            &route.key,
            "MESSAGE",
            &conn.id,
            conn.connected_at,
            &conn.source_ip,
            &conn.user_agent,
        );
        ctx["messageId"] = new_request_id().into();
        ctx["authorizer"] = Value::Object(conn.authorizer.clone());
        let event = json!({ "requestContext": ctx, "body": body, "isBase64Encoded": binary });
        match self.invoke(&route.function, &event).await {
            Ok(response) => {
                if route.responds
                    && let Some(text) = response.get("body").and_then(Value::as_str).filter(|b| !b.is_empty())
                {
                    let _ = conn.tx.send(Outbound::Text(text.to_owned()));
                }
            }
            Err(e) => {
                warn!(route = %route.key, connection = %conn.id, error = %e, "integration failed");
                // What API Gateway sends when the integration fails, plus natter's error fields so that clients
                // of the protocol see an ordinary `internal` error (echoing their requestId when they gave one).
                let mut frame = json!({
                    "type": "error",
                    "code": "internal",
                    "message": "Internal server error",
                    "connectionId": conn.id,
                });
                if let Some(rid) = serde_json::from_str::<Value>(&body)
                    .ok()
                    .and_then(|v| v.get("requestId").cloned())
                {
                    frame["requestId"] = rid;
                }
                let _ = conn.tx.send(Outbound::Text(frame.to_string()));
            }
        }
    }

    async fn serve(self: Arc<Self>, socket: WebSocket, conn: Arc<Conn>, mut rx: mpsc::UnboundedReceiver<Outbound>) {
        let (mut sink, mut stream) = socket.split();
        // The writer ends after sending a close frame (server-initiated close) and returns its code.
        let mut writer = tokio::spawn(async move {
            while let Some(out) = rx.recv().await {
                let sent = match out {
                    Outbound::Text(t) => sink.send(Message::Text(t.into())).await,
                    Outbound::Close(code, reason) => {
                        let _ = sink
                            .send(Message::Close(Some(CloseFrame {
                                code,
                                reason: reason.into(),
                            })))
                            .await;
                        return Some((code, reason));
                    }
                };
                if sent.is_err() {
                    return None;
                }
            }
            None
        });
        let ends = tokio::time::Instant::now() + self.opts.max_duration;
        let (code, reason): (u16, String) = loop {
            tokio::select! {
                frame = stream.next() => {
                    conn.last_active.store(natter_core::now_ms(), Ordering::Relaxed);
                    match frame {
                        Some(Ok(Message::Text(t))) => {
                            tokio::spawn(self.clone().handle_frame(conn.clone(), t.to_string(), false));
                        }
                        Some(Ok(Message::Binary(b))) => {
                            use base64::engine::general_purpose::STANDARD;
                            tokio::spawn(self.clone().handle_frame(conn.clone(), STANDARD.encode(&b), true));
                        }
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                        Some(Ok(Message::Close(frame))) => {
                            break frame.map(|f| (f.code, f.reason.to_string())).unwrap_or((1005, String::new()));
                        }
                        Some(Err(e)) => {
                            let text = e.to_string();
                            // tungstenite refuses frames over max_frame_size and messages over max_message_size.
                            if text.contains("too long") || text.contains("Space limit") {
                                let _ = conn.tx.send(Outbound::Close(1009, "Message too big"));
                                let _ = tokio::time::timeout(Duration::from_secs(2), &mut writer).await;
                                break (1009, "Message too big".into());
                            }
                            break (1006, text);
                        }
                        None => break (1006, String::new()),
                    }
                }
                // The server closed it (DeleteConnection, idle timeout, maximum duration): API Gateway does not
                // wait for the client's answer before $disconnect.
                sent = &mut writer => {
                    break sent.ok().flatten().map(|(c, r)| (c, r.to_owned())).unwrap_or((1006, String::new()));
                }
                _ = tokio::time::sleep(self.opts.idle_timeout) => {
                    let _ = conn.tx.send(Outbound::Close(1001, "Going away"));
                }
                _ = tokio::time::sleep_until(ends) => {
                    let _ = conn.tx.send(Outbound::Close(1001, "Going away"));
                }
            }
        };
        lock(&self.connections).remove(&conn.id);
        if !writer.is_finished() {
            let _ = conn.tx.send(Outbound::Close(
                if code == 1005 || code == 1006 { 1000 } else { code },
                "",
            ));
            let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
        }
        info!(connection = %conn.id, code, "closed");
        if let Some(route) = self.route("$disconnect").cloned() {
            let mut ctx = self.context(
                "$disconnect",
                "DISCONNECT",
                &conn.id,
                conn.connected_at,
                &conn.source_ip,
                &conn.user_agent,
            );
            ctx["authorizer"] = Value::Object(conn.authorizer.clone());
            ctx["disconnectStatusCode"] = code.into();
            ctx["disconnectReason"] = reason.into();
            let event = json!({
                "headers": {"Host": self.opts.domain, "x-api-key": "", "X-Forwarded-For": "", "x-restapi": ""},
                "multiValueHeaders": {"Host": [self.opts.domain], "x-api-key": [""], "X-Forwarded-For": [""], "x-restapi": [""]},
                "requestContext": ctx,
                "isBase64Encoded": false,
            });
            if let Err(e) = self.invoke(&route.function, &event).await {
                warn!(connection = %conn.id, error = %e, "$disconnect failed");
            }
        }
    }
}

fn header_maps(headers: &HeaderMap) -> (Value, Value) {
    let mut single = Map::new();
    let mut multi: Map<String, Value> = Map::new();
    for (k, v) in headers {
        let v = v.to_str().unwrap_or_default().to_owned();
        // API Gateway passes header names as the client wrote them; HTTP/1 clients mostly use canonical case.
        let name = canonical(k.as_str());
        single.insert(name.clone(), v.clone().into());
        if let Some(a) = multi.entry(name).or_insert_with(|| json!([])).as_array_mut() {
            a.push(v.into());
        }
    }
    (Value::Object(single), Value::Object(multi))
}

fn canonical(name: &str) -> String {
    name.split('-')
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}

fn query_maps(query: &[(String, String)]) -> (Value, Value) {
    let mut single = Map::new();
    let mut multi: Map<String, Value> = Map::new();
    for (k, v) in query {
        single.insert(k.clone(), v.clone().into());
        if let Some(a) = multi.entry(k.clone()).or_insert_with(|| json!([])).as_array_mut() {
            a.push(v.clone().into());
        }
    }
    (Value::Object(single), Value::Object(multi))
}

fn status_of(response: &Value) -> u16 {
    response
        .get("statusCode")
        .and_then(Value::as_u64)
        .map(|s| s as u16)
        .unwrap_or(200)
}

async fn upgrade(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let ws = match ws {
        Ok(ws) => ws,
        // Not an upgrade: a browser. Show it the reference web client.
        Err(_) => return crate::web::index(),
    };
    let connection_id = new_connection_id();
    let connected_at = natter_core::now_ms();
    let source_ip = headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| peer.ip().to_string());
    let user_agent = headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let (single_headers, multi_headers) = header_maps(&headers);
    let (single_query, multi_query) = query_maps(&query);
    let base_ctx = gw.context(
        "$connect",
        "CONNECT",
        &connection_id,
        connected_at,
        &source_ip,
        &user_agent,
    );
    let connect = gw.route("$connect").cloned();

    let mut authorizer = Map::new();
    if let Some(auth) = connect.as_ref().and_then(|r| r.authorizer.clone()) {
        // API Gateway refuses without invoking the authorizer when an identity source is missing.
        let has = |k: &str| query.iter().any(|(q, v)| q == k && !v.is_empty());
        let has_header = |k: &str| headers.get(k).is_some();
        if !auth.query_identity.iter().all(|k| has(k)) || !auth.header_identity.iter().all(|k| has_header(k)) {
            return message(StatusCode::UNAUTHORIZED, "Unauthorized");
        }
        let event = json!({
            "type": "REQUEST",
            "methodArn": format!("arn:aws:execute-api:{}:{}:{}/{}/$connect", gw.opts.region, gw.opts.account, gw.opts.api_id, gw.api.stage),
            "headers": single_headers,
            "multiValueHeaders": multi_headers,
            "queryStringParameters": single_query,
            "multiValueQueryStringParameters": multi_query,
            "stageVariables": {},
            "requestContext": base_ctx,
        });
        let started = std::time::Instant::now();
        match gw.invoke(&auth.function, &event).await {
            Ok(policy) => {
                let allowed = policy["policyDocument"]["Statement"]
                    .as_array()
                    .is_some_and(|s| !s.is_empty() && s.iter().all(|st| st["Effect"] == "Allow"));
                if !allowed {
                    return message(StatusCode::FORBIDDEN, "Forbidden");
                }
                if let Some(ctx) = policy.get("context").and_then(Value::as_object) {
                    authorizer.extend(ctx.clone());
                }
                authorizer.insert(
                    "principalId".into(),
                    policy.get("principalId").cloned().unwrap_or(Value::Null),
                );
                authorizer.insert(
                    "integrationLatency".into(),
                    (started.elapsed().as_millis() as u64).into(),
                );
            }
            Err(InvokeError::Function { message: m, .. }) if m == "Unauthorized" => {
                return message(StatusCode::UNAUTHORIZED, "Unauthorized");
            }
            Err(e) => {
                warn!(error = %e, "authorizer failed");
                return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error");
            }
        }
    }

    if let Some(route) = &connect {
        let mut ctx = base_ctx.clone();
        if !authorizer.is_empty() {
            ctx["authorizer"] = Value::Object(authorizer.clone());
        }
        let event = json!({
            "headers": single_headers,
            "multiValueHeaders": multi_headers,
            "queryStringParameters": single_query,
            "multiValueQueryStringParameters": multi_query,
            "requestContext": ctx,
            "isBase64Encoded": false,
        });
        match gw.invoke(&route.function, &event).await {
            Ok(r) if (200..300).contains(&status_of(&r)) => {}
            Ok(r) => {
                let status = StatusCode::from_u16(status_of(&r)).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                return message(status, "Connection refused by $connect");
            }
            Err(e) => {
                warn!(error = %e, "$connect failed");
                return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error");
            }
        }
    }

    let gw2 = gw.clone();
    ws.max_frame_size(MAX_FRAME_BYTES)
        .max_message_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| async move {
            let (tx, rx) = mpsc::unbounded_channel();
            let conn = Arc::new(Conn {
                id: connection_id.clone(),
                tx,
                connected_at,
                last_active: AtomicI64::new(connected_at),
                source_ip,
                user_agent,
                authorizer,
            });
            lock(&gw2.connections).insert(connection_id.clone(), conn.clone());
            info!(connection = %connection_id, "connected");
            gw2.serve(socket, conn, rx).await;
        })
}

async fn stats(State(gw): State<Arc<Gateway>>) -> Response {
    Json(gw.stats()).into_response()
}

fn find(gw: &Gateway, stage: &str, id: &str) -> Result<Arc<Conn>, Box<Response>> {
    if stage != gw.api.stage {
        return Err(Box::new(message(StatusCode::FORBIDDEN, "Forbidden")));
    }
    lock(&gw.connections).get(id).cloned().ok_or_else(|| Box::new(gone()))
}

async fn post_to_connection(
    State(gw): State<Arc<Gateway>>,
    Path((stage, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let conn = match find(&gw, &stage, &id) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    if body.len() > MAX_MESSAGE_BYTES {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            [("x-amzn-ErrorType", "PayloadTooLargeException")],
            Json(json!({"message": "Payload too large"})),
        )
            .into_response();
    }
    match conn
        .tx
        .send(Outbound::Text(String::from_utf8_lossy(&body).into_owned()))
    {
        Ok(()) => StatusCode::OK.into_response(),
        Err(_) => gone(),
    }
}

async fn get_connection(State(gw): State<Arc<Gateway>>, Path((stage, id)): Path<(String, String)>) -> Response {
    match find(&gw, &stage, &id) {
        Ok(c) => Json(json!({
            "connectedAt": iso8601(c.connected_at),
            "identity": {"sourceIp": c.source_ip, "userAgent": c.user_agent},
            "lastActiveAt": iso8601(c.last_active.load(Ordering::Relaxed)),
        }))
        .into_response(),
        Err(r) => *r,
    }
}

async fn delete_connection(State(gw): State<Arc<Gateway>>, Path((stage, id)): Path<(String, String)>) -> Response {
    match find(&gw, &stage, &id) {
        Ok(c) => {
            let _ = c.tx.send(Outbound::Close(1000, ""));
            StatusCode::NO_CONTENT.into_response()
        }
        Err(r) => *r,
    }
}

#[cfg(test)]
mod tests {
    use super::TokenBucket;
    use std::time::Duration;

    #[test]
    fn the_bucket_allows_a_burst_then_the_rate() {
        let start = tokio::time::Instant::now();
        let mut b = TokenBucket::new(10.0, 5);
        b.last = start;
        let taken = (0..20).filter(|_| b.take(start)).count();
        assert_eq!(taken, 5, "the burst, then nothing at the same instant");
        // 0.5 s at 10/s refills 5 tokens, never more than the burst.
        assert_eq!(
            (0..20).filter(|_| b.take(start + Duration::from_millis(500))).count(),
            5
        );
        assert_eq!((0..20).filter(|_| b.take(start + Duration::from_secs(60))).count(), 5);
        assert!(!b.take(start + Duration::from_secs(60)));
        assert!(b.take(start + Duration::from_millis(60_100)));
    }
}
