//! `natter-local redrive QUEUE`: asks a running natter-local to move a queue's dead letters back.

use http_body_util::{BodyExt, Full};
use std::process::ExitCode;

/// Asks a running natter-local to redrive `queue` and prints what moved.
pub async fn redrive(url: &str, queue: &str) -> ExitCode {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<axum::body::Bytes>>();
    let request = axum::http::Request::post(format!("{}/_natter/redrive/{queue}", url.trim_end_matches('/')))
        // natter-local's control endpoints take only JSON (see guard.rs): the queue is in the path, the body empty.
        .header(axum::http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(axum::body::Bytes::from_static(b"{}")));
    let response = match request {
        Ok(r) => client.request(r).await,
        Err(e) => {
            eprintln!("natter-local redrive: {e}");
            return ExitCode::FAILURE;
        }
    };
    match response {
        Ok(r) => {
            let ok = r.status().is_success();
            let body = r.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            let text = String::from_utf8_lossy(&body);
            if ok {
                println!("{text}");
                ExitCode::SUCCESS
            } else {
                eprintln!("natter-local redrive: {text}");
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("natter-local redrive: is natter-local running at {url}? {e}");
            ExitCode::FAILURE
        }
    }
}
