//! The reference web client (infra/local/web/), served by natter-local: `GET /` in a browser opens it (a
//! WebSocket upgrade on the same URL is the API), its scripts live under `/_natter/web/`, and
//! `GET /_natter/token?user=NAME` mints the development token it signs in with. The files are compiled in, so
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

/// Routes of the web client; `secret` signs the development tokens (the value natter-local gives the stack's token secret).
pub fn router(secret: String) -> Router {
    Router::new().route("/_natter/web/{file}", get(script)).route(
        "/_natter/token",
        get(move |Query(q): Query<TokenQuery>| async move {
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
