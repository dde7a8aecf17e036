//! The upgrade: the REQUEST authorizer (identity sources checked first, as API Gateway does), then `$connect`;
//! only then is the WebSocket accepted. Missing identity: 401 without invoking; Deny: 403; `Unauthorized`: 401;
//! `$connect` failing: 500.

use super::{
    Conn, Gateway, MAX_FRAME_BYTES, MAX_MESSAGE_BYTES,
    events::{header_maps, query_maps, status_of},
    lock, message, new_connection_id,
};
use crate::runtime::InvokeError;
use axum::{
    extract::{
        ConnectInfo, Query, State,
        ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection},
    },
    http::{HeaderMap, StatusCode},
    response::Response,
};
use serde_json::{Map, Value, json};
use std::{
    net::SocketAddr,
    sync::{Arc, atomic::AtomicI64},
};
use tokio::sync::mpsc;
use tracing::{info, warn};

pub(super) async fn upgrade(
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
    // The account's quota of new connections per second, if natter-local enforces one.
    if let Some(bucket) = &gw.connects
        && !lock(bucket).take(tokio::time::Instant::now())
    {
        return message(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
    }
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
