//! natter-local's own endpoints (`/_natter/stats`, `/_natter/token`, `/_natter/faults`, `/_natter/redrive/...`)
//! are for the developer at this machine, never for a web page or a neighbour:
//!
//! - the caller must be on loopback, so nobody on the network mints tokens or injects outages;
//! - the `Host` header must name loopback, so a web page cannot reach them through DNS rebinding (its name
//!   re-pointed at 127.0.0.1: the browser then sends the page's own name as `Host`);
//! - a control POST must say `Content-Type: application/json`, which a cross-site form cannot send and a
//!   cross-site `fetch` can send only after a CORS preflight that natter-local never approves.
//!
//! The WebSocket API and `@connections` are not behind this guard: they stand for API Gateway, which answers
//! anyone with a valid token.

use axum::{
    Router,
    extract::{ConnectInfo, Request},
    http::{Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use std::net::{IpAddr, SocketAddr};

/// `router` answered only to loopback callers naming loopback, with JSON on every POST.
pub fn local_only(router: Router) -> Router {
    router.layer(axum::middleware::from_fn(check))
}

async fn check(ConnectInfo(peer): ConnectInfo<SocketAddr>, request: Request, next: Next) -> Response {
    let host = request.headers().get(header::HOST).and_then(|h| h.to_str().ok());
    if let Err(refusal) = admit(peer.ip(), host, request.method(), content_type(&request)) {
        tracing::warn!(%peer, host = host.unwrap_or(""), path = request.uri().path(), refusal, "refused");
        return refusal_response(refusal);
    }
    next.run(request).await
}

fn content_type(request: &Request) -> Option<&str> {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
}

/// Why a call to a local endpoint is refused, if it is.
fn admit(peer: IpAddr, host: Option<&str>, method: &Method, content_type: Option<&str>) -> Result<(), &'static str> {
    if !peer.is_loopback() {
        return Err("natter-local's own endpoints answer only callers on this machine");
    }
    if !host.is_some_and(is_loopback_host) {
        return Err("the Host header must name this machine (127.0.0.1, [::1] or localhost)");
    }
    let json = content_type
        .and_then(|t| t.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if method == Method::POST && !json {
        return Err("a control POST must be sent as Content-Type: application/json");
    }
    Ok(())
}

fn refusal_response(refusal: &'static str) -> Response {
    let status = if refusal.contains("Content-Type") {
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    } else {
        StatusCode::FORBIDDEN
    };
    (status, axum::Json(serde_json::json!({ "message": refusal }))).into_response()
}

/// `127.0.0.1:3001`, `localhost`, `[::1]:3001`: a `Host` value (port optional) that names this machine.
pub fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split_once(']').map_or("", |(ip, _)| ip),
        None => host.rsplit_once(':').map_or(host, |(name, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) {
                name
            } else {
                host
            }
        }),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether a listen address keeps natter-local on this machine.
pub fn is_loopback_bind(host: &str) -> bool {
    is_loopback_host(host) || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn loopback_hosts_with_and_without_ports() {
        for ok in [
            "127.0.0.1",
            "127.0.0.1:3001",
            "localhost:3001",
            "LOCALHOST",
            "[::1]:3001",
            "[::1]",
            "127.1.2.3:80",
        ] {
            assert!(is_loopback_host(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:3001",
            "10.0.0.5:3001",
            "localhost.evil.example",
            "",
            "[::1",
        ] {
            assert!(!is_loopback_host(bad), "{bad}");
        }
        assert!(is_loopback_bind("::1"));
        assert!(!is_loopback_bind("0.0.0.0"));
    }

    #[test]
    fn a_remote_caller_a_foreign_host_or_a_form_post_is_refused() {
        let json = Some("application/json; charset=utf-8");
        assert!(admit(LOCAL, Some("127.0.0.1:3001"), &Method::GET, None).is_ok());
        assert!(admit(LOCAL, Some("localhost"), &Method::POST, json).is_ok());
        let remote = IpAddr::V4(std::net::Ipv4Addr::new(192, 168, 1, 7));
        assert!(admit(remote, Some("127.0.0.1"), &Method::GET, None).is_err());
        assert!(admit(LOCAL, Some("rebound.evil.example"), &Method::GET, None).is_err());
        assert!(admit(LOCAL, None, &Method::GET, None).is_err());
        for form in [None, Some("text/plain"), Some("application/x-www-form-urlencoded")] {
            assert!(
                admit(LOCAL, Some("127.0.0.1"), &Method::POST, form).is_err(),
                "{form:?}"
            );
        }
    }
}
