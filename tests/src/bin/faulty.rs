//! A Lambda function that misbehaves on request, speaking the Runtime API by hand: a frame whose body contains
//! `crash` kills the process mid-invocation, `hang` never answers (the function timeout must end it), `huge` is
//! answered with a 200 KB route response (over API Gateway's 128 KB message limit), anything else with a route
//! response echoing the body. natter-local's failure tests run it in place of a
//! function's own binary.

use std::{
    io::{Read, Write},
    net::TcpStream,
};

fn request(api: &str, method: &str, path: &str, body: &str) -> std::io::Result<(String, String)> {
    let mut s = TcpStream::connect(api)?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {api}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    Ok((head.to_owned(), body.to_owned()))
}

fn main() -> std::io::Result<()> {
    let api = std::env::var("AWS_LAMBDA_RUNTIME_API").expect("AWS_LAMBDA_RUNTIME_API");
    loop {
        let (head, event) = request(&api, "GET", "/2018-06-01/runtime/invocation/next", "")?;
        let id = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("lambda-runtime-aws-request-id:")
                    .map(|v| v.trim().to_owned())
            })
            .expect("request id header");
        let event: serde_json::Value = serde_json::from_str(&event).unwrap_or_default();
        let body = event["body"].as_str().unwrap_or_default().to_owned();
        if body.contains("crash") {
            std::process::abort();
        }
        if body.contains("hang") {
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
        let request_id = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .map(|v| v["requestId"].clone());
        let echoed = if body.contains("huge") {
            "x".repeat(200 * 1024)
        } else {
            body
        };
        let reply = serde_json::json!({"type": "echo", "body": echoed, "requestId": request_id});
        let response = serde_json::json!({"statusCode": 200, "body": reply.to_string()});
        request(
            &api,
            "POST",
            &format!("/2018-06-01/runtime/invocation/{id}/response"),
            &response.to_string(),
        )?;
    }
}
