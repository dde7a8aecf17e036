//! natter-tests: every test above the unit tests, in three binaries (linking the AWS SDK three times, not twenty):
//! `handlers` (each function's handler against the emulator and a @connections stub), `contract` (the store
//! ports' contract on the in-memory fakes and on DynamoDB) and `e2e` (real websocket clients against
//! natter-local, and the web client in Chromium).
//!
//! - [`testkit`]: one emulator per test binary, fresh stacks, events shaped as AWS sends them, a stub.
//! - [`start`] runs natter-local in-process on this test binary's emulator, with a table prefix of its own and
//!   the function binaries cargo built (it builds them once if needed).
//! - [`Client`] is a websocket client that speaks the protocol: it sends frames, waits for the one it expects and
//!   keeps the others for later.

use futures::{SinkExt, StreamExt};
use natter_core::ids::UserId;
use natter_local::{
    local::{Local, LocalOptions},
    process::workspace_root,
};

pub mod testkit;
use serde_json::{Value, json};
use std::{
    collections::VecDeque,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async, tungstenite::Message};

pub use tokio_tungstenite::tungstenite;

static BUILT: OnceLock<()> = OnceLock::new();
static PREFIX: AtomicUsize = AtomicUsize::new(0);

/// Makes sure the function binaries are built and current (a no-op when `make test` built them).
pub fn build_binaries() {
    BUILT.get_or_init(|| {
        let status = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--workspace", "--bins", "--quiet"])
            .current_dir(workspace_root())
            .status()
            .expect("cargo build");
        assert!(status.success(), "cargo build --workspace --bins failed");
    });
}

/// Output lines of the functions, kept for assertions (and printed when a test fails).
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<String>>>);

impl Logs {
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// Options for a stack on this test binary's emulator, on a free port, with a fresh set of tables and queues.
pub fn options() -> (LocalOptions, Logs) {
    build_binaries();
    let mut o = LocalOptions::new(Some(testkit::emulator()));
    o.port = 0;
    o.prefix = format!("e{}n{}_", std::process::id(), PREFIX.fetch_add(1, Ordering::Relaxed));
    o.concurrency = 4;
    o.pollers = 1;
    o.max_visibility = Some(1);
    // `make test` runs the end-to-end suite a second time with DynamoDB's read lag.
    o.read_lag = std::env::var("NATTER_LOCAL_READ_LAG_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis);
    let logs = Logs::default();
    let sink = logs.clone();
    o.log = Arc::new(move |f, line| {
        sink.0.lock().unwrap().push(format!("[{f}] {line}"));
    });
    (o, logs)
}

pub async fn start() -> Local {
    Local::start(options().0).await.expect("natter-local")
}

/// The live connection ids natter-local's Connections table holds, oldest first (the per-user rate-limit
/// counters that share the table, `user:{user}#w{window}`, are skipped).
pub async fn connection_ids(local: &Local) -> Vec<String> {
    let mut conns: Vec<(i64, String)> = scan(local, "ConnectionsTable")
        .await
        .iter()
        .filter(|i| i.contains_key("user_id"))
        .filter_map(|i| {
            let id = i.get("connection_id")?.as_s().ok()?.clone();
            let at = i
                .get("connected_at")
                .and_then(|a| a.as_n().ok()?.parse().ok())
                .unwrap_or(0);
            Some((at, id))
        })
        .collect();
    conns.sort();
    conns.into_iter().map(|(_, id)| id).collect()
}

/// Every item of one of the stack's tables (by logical id).
pub async fn scan(
    local: &Local,
    logical_id: &str,
) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    let sdk = natter_local::emulator::sdk_for(local.emulator.as_deref().expect("an emulator")).await;
    let table = natter_local::template::plain(&local.stack.names.refs[logical_id]);
    aws_sdk_dynamodb::Client::new(&sdk)
        .scan()
        .table_name(table)
        .send()
        .await
        .expect("scan")
        .items
        .unwrap_or_default()
}

/// A token for `user`, signed with the local secret.
pub fn token(user: &str) -> String {
    let secret = natter_local::local::dev_secret();
    natter_core::auth::mint(secret.as_bytes(), &UserId::parse(user).expect("user id"), 3600)
}

/// One HTTP/1.1 request to `base` (`http://host:port`) over a plain TCP connection, as a browser or curl would
/// send it: the status and the body as text. `Host` is the authority of `base` unless `headers` name another.
pub async fn http(base: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let authority = base
        .strip_prefix("http://")
        .expect("an http:// base")
        .trim_end_matches('/');
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("host")) {
        request.push_str(&format!("Host: {authority}\r\n"));
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    let mut stream = tokio::net::TcpStream::connect(authority).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await.expect("read");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// One plain HTTP/1.1 request to an absolute `http://` URL with a binary body (a presigned upload or download):
/// status, headers (lowercased names), body.
pub async fn fetch(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    if method != "GET" && method != "OPTIONS" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(authority).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("write");
    stream.write_all(body).await.expect("write body");
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await.expect("read");
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head");
    let text = String::from_utf8_lossy(&buf[..split]).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers = text
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, buf[split + 4..].to_vec())
}

pub const WAIT: Duration = Duration::from_secs(10);

pub struct Client {
    pub user: String,
    ws: WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>,
    kept: VecDeque<Value>,
    next_id: usize,
    pub closed: Option<(u16, String)>,
    /// The first sync page, answered right after connecting.
    pub connect_sync: Option<Value>,
    /// Message ids received so far: a repeat is dropped, as the protocol asks of clients, and counted.
    seen: std::collections::HashSet<String>,
    pub repeats: usize,
}

impl Client {
    /// Connects as `user` with a valid token and, as the protocol asks of a client, syncs at once (the reply is
    /// kept for the test to look at; the catch-up after it pushes what the sync could not see yet).
    pub async fn connect(url: &str, user: &str) -> Client {
        let mut c = Self::connect_with(url, user, &token(user))
            .await
            .unwrap_or_else(|e| panic!("{user} could not connect: {e}"));
        c.send(json!({"action": "sync", "requestId": "connect-sync"})).await;
        let first = c
            .wait_for("the sync after connecting", |v| v["requestId"] == "connect-sync")
            .await;
        c.connect_sync = Some(first);
        c
    }

    /// Connects without the sync a client sends first: for tests of the gateway itself, which count frames.
    pub async fn connect_raw(url: &str, user: &str) -> Client {
        Self::connect_with(url, user, &token(user))
            .await
            .unwrap_or_else(|e| panic!("{user} could not connect: {e}"))
    }

    /// Connects with any token; `Err` carries the HTTP status of a refused upgrade.
    pub async fn connect_with(url: &str, user: &str, token: &str) -> Result<Client, u16> {
        match connect_async(format!("{url}/?token={token}")).await {
            Ok((ws, _)) => Ok(Client {
                user: user.to_owned(),
                ws,
                kept: VecDeque::new(),
                next_id: 0,
                closed: None,
                seen: Default::default(),
                repeats: 0,
                connect_sync: None,
            }),
            Err(tungstenite::Error::Http(r)) => Err(r.status().as_u16()),
            Err(e) => panic!("connect: {e}"),
        }
    }

    pub async fn send(&mut self, frame: Value) {
        self.ws
            .send(Message::Text(frame.to_string().into()))
            .await
            .expect("send");
    }

    pub async fn send_text(&mut self, text: String) {
        let _ = self.ws.send(Message::Text(text.into())).await;
    }

    async fn read(&mut self, wait: Duration) -> Option<Value> {
        loop {
            match tokio::time::timeout(wait, self.ws.next()).await {
                Err(_) => return None,
                Ok(None) => return None,
                Ok(Some(Ok(Message::Text(t)))) => {
                    let v: Value = serde_json::from_str(&t).unwrap_or(Value::String(t.to_string()));
                    if v["type"] == "message"
                        && let Some(id) = v["messageId"].as_str()
                        && !self.seen.insert(id.to_owned())
                    {
                        self.repeats += 1;
                        continue;
                    }
                    return Some(v);
                }
                Ok(Some(Ok(Message::Close(f)))) => {
                    self.closed = Some(
                        f.map(|f| (u16::from(f.code), f.reason.to_string()))
                            .unwrap_or((1005, String::new())),
                    );
                    return None;
                }
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(_))) => {
                    self.closed.get_or_insert((1006, String::new()));
                    return None;
                }
            }
        }
    }

    /// The first frame (kept or new) that `pred` accepts, within `wait`; others are kept for later.
    pub async fn wait_for(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        self.try_wait_for(pred, WAIT)
            .await
            .unwrap_or_else(|| panic!("{}: no {what} within {WAIT:?}; kept {:?}", self.user, self.kept))
    }

    pub async fn try_wait_for(&mut self, pred: impl Fn(&Value) -> bool, wait: Duration) -> Option<Value> {
        if let Some(i) = self.kept.iter().position(&pred) {
            return self.kept.remove(i);
        }
        let until = tokio::time::Instant::now() + wait;
        loop {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return None;
            }
            let v = self.read(left).await?;
            if pred(&v) {
                return Some(v);
            }
            self.kept.push_back(v);
        }
    }

    /// Sends `frame` with a fresh requestId and returns the direct reply.
    pub async fn request(&mut self, mut frame: Value) -> Value {
        self.next_id += 1;
        let id = format!("{}-{}", self.user, self.next_id);
        frame["requestId"] = id.clone().into();
        self.send(frame).await;
        self.wait_for("reply", |v| v["requestId"] == id.as_str()).await
    }

    /// Sends `frame` until its reply satisfies `pred` (within [`WAIT`]) and returns that reply: for reads served by
    /// a DynamoDB index (the mailbox of `sync`, the groups of `group list`), which lag writes by a moment on AWS
    /// and under natter-local's `--read-lag`.
    pub async fn request_until(&mut self, frame: Value, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let reply = self.request(frame.clone()).await;
            if pred(&reply) {
                return reply;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{}: {what} never came; last {reply}",
                self.user
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Sends a one-on-one message and returns the ack.
    pub async fn send_message(&mut self, cmid: &str, to: &str, body: &str) -> Value {
        let reply = self
            .request(json!({"action": "send", "clientMsgId": cmid, "to": to, "body": body}))
            .await;
        assert_eq!(reply["type"], "ack", "{reply}");
        reply
    }

    /// Every `message` push received within `wait`.
    pub async fn messages_within(&mut self, wait: Duration) -> Vec<Value> {
        let mut out = Vec::new();
        while let Some(m) = self.try_wait_for(|v| v["type"] == "message", wait).await {
            out.push(m);
        }
        out
    }

    /// Waits until the server closes the connection; returns its close code.
    pub async fn closed_within(&mut self, wait: Duration) -> Option<u16> {
        let until = tokio::time::Instant::now() + wait;
        while self.closed.is_none() {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return None;
            }
            if let Some(v) = self.read(left).await {
                self.kept.push_back(v);
            } else if self.closed.is_none() {
                return None;
            }
        }
        self.closed.as_ref().map(|c| c.0)
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// Makes `a` and `b` friends: `a` asks, `b` accepts. A group's creator adds its friends at once; anyone else it
/// names is only invited.
pub async fn befriend(a: &mut Client, b: &mut Client) {
    let (a_name, b_name) = (a.user.clone(), b.user.clone());
    let asked = a
        .request(serde_json::json!({"action": "friends", "op": "add", "user": b_name}))
        .await;
    assert_eq!(asked["type"], "friends", "{asked}");
    let accepted = b
        .request(serde_json::json!({"action": "friends", "op": "add", "user": a_name}))
        .await;
    let state = accepted["friends"]
        .as_array()
        .and_then(|f| f.iter().find(|x| x["user"] == a.user.as_str()))
        .map(|x| x["state"].clone());
    assert_eq!(state, Some("friend".into()), "{accepted}");
}
