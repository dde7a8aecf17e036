//! The events API Gateway gives integrations: request contexts, and headers and query strings in both their
//! single- and multi-value forms.

use super::{Gateway, new_request_id};
use crate::time::request_time;
use axum::http::HeaderMap;
use serde_json::{Map, Value, json};

impl Gateway {
    pub(super) fn context(
        &self,
        route: &str,
        event_type: &str,
        conn_id: &str,
        connected_at: i64,
        ip: &str,
        ua: &str,
    ) -> Value {
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
}

pub(super) fn header_maps(headers: &HeaderMap) -> (Value, Value) {
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

pub(super) fn canonical(name: &str) -> String {
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

pub(super) fn query_maps(query: &[(String, String)]) -> (Value, Value) {
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

pub(super) fn status_of(response: &Value) -> u16 {
    response
        .get("statusCode")
        .and_then(Value::as_u64)
        .map(|s| s as u16)
        .unwrap_or(200)
}
