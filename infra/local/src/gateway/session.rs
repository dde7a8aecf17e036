//! A connection's life after the upgrade: each frame is routed and invoked, the route response goes back, the
//! idle timeout and maximum duration close it, and `$disconnect` runs on every close.

use super::{Conn, Gateway, MAX_MESSAGE_BYTES, Outbound, lock, new_request_id};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use base64::Engine;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::{
    sync::{Arc, atomic::Ordering},
    time::Duration,
};
use tokio::sync::mpsc;
use tracing::{info, warn};

impl Gateway {
    /// A frame from the client: route it, invoke, answer through the route response or an error frame.
    async fn handle_frame(self: Arc<Self>, conn: Arc<Conn>, body: String, binary: bool) {
        if let Some(hold) = self.reorder.hold() {
            tokio::time::sleep(hold).await;
        }
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
                    if text.len() > MAX_MESSAGE_BYTES {
                        // API Gateway never delivers a message over its limit; the client just gets no reply.
                        warn!(route = %route.key, connection = %conn.id, bytes = text.len(), "route response over 128 KB not delivered");
                        self.undelivered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    } else {
                        let _ = conn.tx.send(Outbound::Text(text.to_owned()));
                    }
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

    pub(super) async fn serve(
        self: Arc<Self>,
        socket: WebSocket,
        conn: Arc<Conn>,
        mut rx: mpsc::UnboundedReceiver<Outbound>,
    ) {
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
