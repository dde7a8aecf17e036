//! The @connections management API: POST (a message to a connection), GET (its `connectedAt`, `lastActiveAt`
//! and `identity`) and DELETE (close it), each 410 `GoneException` for an unknown id.

use super::{Conn, Gateway, MAX_MESSAGE_BYTES, Outbound, gone, lock, message};
use crate::time::iso8601;
use axum::{
    Json,
    body::Bytes,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::json;
use std::sync::{Arc, atomic::Ordering};

fn find(gw: &Gateway, stage: &str, id: &str) -> Result<Arc<Conn>, Box<Response>> {
    if stage != gw.api.stage {
        return Err(Box::new(message(StatusCode::FORBIDDEN, "Forbidden")));
    }
    lock(&gw.connections).get(id).cloned().ok_or_else(|| Box::new(gone()))
}

pub(super) async fn post_to_connection(
    State(gw): State<Arc<Gateway>>,
    Path((stage, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let conn = match find(&gw, &stage, &id) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    if let Some(refused) = over_rate(&gw) {
        return refused;
    }
    if body.len() > MAX_MESSAGE_BYTES {
        gw.undelivered.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(connection = %id, bytes = body.len(), "@connections post over 128 KB refused (413)");
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            [("x-amzn-ErrorType", "PayloadTooLargeException")],
            Json(json!({"message": "Payload too large"})),
        )
            .into_response();
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    if let Some(hold) = gw.reorder.hold() {
        // The reordering fault: delivered later, so a later push can overtake it.
        tokio::spawn(async move {
            tokio::time::sleep(hold).await;
            let _ = conn.tx.send(Outbound::Text(text));
        });
        return StatusCode::OK.into_response();
    }
    match conn.tx.send(Outbound::Text(text)) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(_) => gone(),
    }
}

pub(super) async fn get_connection(
    State(gw): State<Arc<Gateway>>,
    Path((stage, id)): Path<(String, String)>,
) -> Response {
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

pub(super) async fn delete_connection(
    State(gw): State<Arc<Gateway>>,
    Path((stage, id)): Path<(String, String)>,
) -> Response {
    match find(&gw, &stage, &id) {
        Ok(c) => {
            let _ = c.tx.send(Outbound::Close(1000, ""));
            StatusCode::NO_CONTENT.into_response()
        }
        Err(r) => *r,
    }
}

/// The account's `@connections` rate, if natter-local enforces one: 429 `TooManyRequestsException` beyond it.
fn over_rate(gw: &Gateway) -> Option<Response> {
    let bucket = gw.management.as_ref()?;
    if lock(bucket).take(tokio::time::Instant::now()) {
        return None;
    }
    Some(
        (
            StatusCode::TOO_MANY_REQUESTS,
            [("x-amzn-ErrorType", "TooManyRequestsException")],
            Json(json!({"message": "Too Many Requests"})),
        )
            .into_response(),
    )
}
