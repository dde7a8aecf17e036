//! The reference web client (infra/local/web/), served by natter-local: `GET /` in a browser opens it (a
//! WebSocket upgrade on the same URL is the API), its scripts live under `/_natter/web/`, and
//! `GET /_natter/token?user=NAME` mints the development token it signs in with (see [`token_router`] for when). The files are compiled in, so
//! the binary serves them from anywhere.

use axum::{
    Json, Router,
    extract::{Path, Query},
    http::{StatusCode, header},
    response::{Html, IntoResponse, Response},
    routing::get,
};
use natter_core::ids::UserId;
use serde::Deserialize;
use serde_json::json;

const INDEX: &str = include_str!("../web/index.html");
const APP: &str = include_str!("../web/app.js");
const CLIENT: &str = include_str!("../web/natter-client.js");
const ORDER: &str = include_str!("../web/order.js");

/// Lifetime of a minted token; the client asks for a fresh one on every (re)connect.
const TOKEN_TTL_SECS: u64 = 3600;

/// The client's page.
pub fn index() -> Response {
    Html(INDEX).into_response()
}

async fn script(Path(file): Path<String>) -> Response {
    let body = match file.as_str() {
        "app.js" => APP,
        "natter-client.js" => CLIENT,
        "order.js" => ORDER,
        _ => return (StatusCode::NOT_FOUND, "no such file").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

#[derive(Deserialize)]
struct TokenQuery {
    user: String,
}

/// The web client's files.
pub fn router() -> Router {
    Router::new().route("/_natter/web/{file}", get(script))
}

/// `GET /_natter/token?user=NAME`. natter-local mints tokens only where a token can open nothing but this
/// machine's stack: `secret` is the development secret it provisioned itself (not `NATTER_JWT_SECRET`, which may
/// be a real deployment's), it listens on loopback, and the backend is an emulator (not `--endpoint aws`).
/// Otherwise the route answers 404 and says why. It sits behind [`crate::guard::local_only`] either way.
pub fn token_router(secret: String, mints: bool) -> Router {
    Router::new().route(
        "/_natter/token",
        get(move |Query(q): Query<TokenQuery>| async move {
            if !mints {
                return (
                    StatusCode::NOT_FOUND,
                    Json(json!({"message": "natter-local mints tokens only with its development secret, on loopback, against an emulator; use `natter-local token USER`"})),
                )
                    .into_response();
            }
            match UserId::parse(&q.user) {
                Ok(user) => Json(json!({
                    "user": user.as_str(),
                    "token": natter_core::auth::mint(secret.as_bytes(), &user, TOKEN_TTL_SECS),
                    "expiresIn": TOKEN_TTL_SECS,
                }))
                .into_response(),
                Err(e) => (
                    StatusCode::BAD_REQUEST,
                    Json(json!({"message": format!("`user`: {e}")})),
                )
                    .into_response(),
            }
        }),
    )
}

/// Whether `/_natter/token` may mint (see [`token_router`]).
pub fn mints_tokens(secret: &str, bind_host: &str, emulated: bool) -> bool {
    emulated && secret == natter_core::auth::DEV_SECRET && crate::guard::is_loopback_bind(bind_host)
}

#[cfg(test)]
mod tests {
    use super::mints_tokens;
    use natter_core::auth::DEV_SECRET;

    #[test]
    fn tokens_are_minted_only_for_the_local_secret_on_loopback_against_an_emulator() {
        assert!(mints_tokens(DEV_SECRET, "127.0.0.1", true));
        assert!(!mints_tokens(DEV_SECRET, "127.0.0.1", false), "--endpoint aws");
        assert!(
            !mints_tokens(DEV_SECRET, "0.0.0.0", true),
            "listening beyond this machine"
        );
        assert!(!mints_tokens("a-real-deployment-secret", "127.0.0.1", true));
    }
}
