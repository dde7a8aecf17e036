//! Test support shared by the handler tests, the contract suite and the end-to-end suites: one emulator per test
//! binary, a fresh set of tables and queues per test (a unique name prefix), the events of `events/`, and a
//! @connections stub.

use aws_config::SdkConfig;
use axum::{
    Router,
    body::Bytes,
    extract::{Path, State},
    http::StatusCode,
    response::IntoResponse,
    routing::post,
};
use natter_core::{aws::AwsApp, aws::DynamoStore, config::Config, meter::Meter};
use natter_local::{
    emulator::{self, Emulator, Kind, sdk_for},
    process::workspace_root,
    provision::{Clients, ProvisionOptions, provision},
    stack::{FunctionSpec, Naming, Stack},
    template::Template,
};
use serde_json::Value;
use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicUsize, Ordering},
    },
};

/// The secret tests sign tokens with.
pub const TEST_SECRET: &str = "natter-test-secret-natter-test-secret";

static EMULATOR: OnceLock<String> = OnceLock::new();
static PREFIX: AtomicUsize = AtomicUsize::new(0);

/// The emulator of this test binary: `NATTER_TEST_ENDPOINT` if set, else the emulator `NATTER_EMULATOR` names
/// (MiniStack by default) started once and killed
/// when the test binary exits.
pub fn emulator() -> String {
    if let Ok(e) = std::env::var("NATTER_TEST_ENDPOINT") {
        return e;
    }
    EMULATOR
        .get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::channel();
            // The thread that spawns the emulator must outlive it (the parent-death signal follows that thread), so it
            // parks forever holding the server.
            let kind = Kind::from_env().unwrap_or_else(|e| panic!("NATTER_EMULATOR: {e}"));
            std::thread::spawn(move || match Emulator::start(kind, emulator::DEFAULT_ACCOUNT) {
                Ok(server) => {
                    let _ = tx.send(Ok(server.endpoint.clone()));
                    loop {
                        std::thread::park();
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                }
            });
            match rx.recv() {
                Ok(Ok(endpoint)) => endpoint,
                Ok(Err(e)) => panic!("{e}"),
                Err(_) => panic!("the emulator thread died"),
            }
        })
        .clone()
}

/// The template's stack provisioned in the emulator under a prefix of its own.
pub struct TestStack {
    pub stack: Stack,
    pub endpoint: String,
    pub sdk: SdkConfig,
    pub dynamo: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    /// The Messages table's stream, read as far as `stored_messages` went.
    messages_stream: tokio::sync::Mutex<Option<natter_local::streams::ShardReader>>,
}

impl TestStack {
    /// Provisions a fresh copy of every table and queue; `gateway` is where @connections is served.
    pub async fn new(gateway: Option<&str>) -> Self {
        let endpoint = tokio::task::spawn_blocking(emulator).await.expect("emulator start");
        let template = Template::load(&workspace_root().join("template.yaml")).expect("template.yaml");
        let mut naming = Naming::local(&endpoint);
        naming.prefix = format!("t{}n{}_", std::process::id(), PREFIX.fetch_add(1, Ordering::Relaxed));
        naming.gateway = gateway.map(str::to_owned);
        // Handler tests run the presence consumer themselves; the queue's debounce delay is natter-local's to test.
        let params = HashMap::from([("PresenceDelaySeconds".to_owned(), "0".to_owned())]);
        let mut stack = Stack::new(template, naming, &params).expect("stack");
        let sdk = sdk_for(&endpoint).await;
        let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        // Provisioning waits longer than a test's calls: 13 tables per stack, many stacks at once on one emulator.
        let patient = natter_local::provision::patient();
        let clients = Clients {
            dynamodb: aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(&sdk)
                    .timeout_config(patient.clone())
                    .build(),
            ),
            sqs: aws_sdk_sqs::Client::from_conf(
                aws_sdk_sqs::config::Builder::from(&sdk)
                    .timeout_config(patient.clone())
                    .build(),
            ),
            secrets: aws_sdk_secretsmanager::Client::new(&sdk),
            s3: natter_local::buckets::client(&sdk, patient),
        };
        let opts = ProvisionOptions {
            secret_value: TEST_SECRET.to_owned(),
            ..Default::default()
        };
        provision(&mut stack, &clients, &opts).await.expect("provisioning");
        Self {
            stack,
            endpoint,
            sdk,
            dynamo,
            sqs,
            messages_stream: Default::default(),
        }
    }

    pub fn function(&self, logical_id: &str) -> FunctionSpec {
        self.stack
            .functions()
            .expect("functions")
            .into_iter()
            .find(|f| f.logical_id == logical_id)
            .unwrap_or_else(|| panic!("no function {logical_id}"))
    }

    /// The configuration the function reads from the environment the template gives it.
    pub fn config(&self, logical_id: &str) -> Config {
        let env = self.function(logical_id).env;
        Config::from_lookup(|k| env.get(k).cloned()).expect("config")
    }

    /// The function's rules wired to the emulator (and to the stub, if it pushes).
    pub fn app(&self, logical_id: &str) -> AwsApp {
        self.app_with(logical_id, |_| {})
    }

    /// As [`TestStack::app`], with settings changed from what the template gives.
    pub fn app_with(&self, logical_id: &str, change: impl FnOnce(&mut natter_core::config::Settings)) -> AwsApp {
        let mut config = self.config(logical_id);
        change(&mut config.settings);
        let pushes = config.management_endpoint.is_some();
        AwsApp::from_config(&self.sdk, &config, pushes, Meter::new(logical_id)).expect("app")
    }

    /// The DynamoDB store on this stack's tables (what the contract suite runs against).
    pub fn store(&self) -> DynamoStore {
        self.app("SendFunction").store
    }

    pub fn queue_arn(&self, logical_id: &str) -> String {
        natter_local::template::plain(&self.stack.names.attrs[&(logical_id.to_owned(), "Arn".to_owned())])
    }

    pub fn table(&self, logical_id: &str) -> String {
        natter_local::template::plain(&self.stack.names.refs[logical_id])
    }

    /// Makes `user` friends with each of `others` (both rows, written directly): a group's creator adds its
    /// friends at once, where anyone else is only invited.
    pub async fn befriend(&self, user: &str, others: &[&str]) {
        use aws_sdk_dynamodb::types::{AttributeValue as Av, PutRequest, WriteRequest};
        let rows: Vec<WriteRequest> = others
            .iter()
            .flat_map(|o| [(user, *o), (*o, user)])
            .map(|(a, b)| {
                let item = HashMap::from([
                    ("user_id".to_owned(), Av::S(a.to_owned())),
                    ("friend_id".to_owned(), Av::S(b.to_owned())),
                    ("state".to_owned(), Av::S("friend".to_owned())),
                ]);
                let put = PutRequest::builder().set_item(Some(item)).build().expect("a put");
                WriteRequest::builder().put_request(put).build()
            })
            .collect();
        for chunk in rows.chunks(25) {
            self.dynamo
                .batch_write_item()
                .request_items(self.table("FriendsTable"), chunk.to_vec())
                .send()
                .await
                .expect("friend rows");
        }
    }

    /// Every item of a table (tests use small tables).
    pub async fn scan(&self, logical_id: &str) -> Vec<HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let r = self
                .dynamo
                .scan()
                .table_name(self.table(logical_id))
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("scan");
            items.extend(r.items.unwrap_or_default());
            start = r.last_evaluated_key;
            if start.is_none() {
                return items;
            }
        }
    }

    /// Receives (and deletes) up to 10 messages of a queue.
    /// The records of the Messages stream since the last call that IndexFunction's event source delivers (its
    /// filter applied), as the DynamoDB event it is invoked with; `Records` is empty if there are none.
    pub async fn stored_messages(&self) -> Value {
        let source = self.function("IndexFunction").stream_sources.into_iter().next();
        let source = source.expect("IndexFunction reads the Messages stream");
        let table = natter_local::template::plain(&self.stack.names.refs[&source.table]);
        let mut reader = self.messages_stream.lock().await;
        if reader.is_none() {
            let http = natter_local::streams::Http::default();
            let opened = natter_local::streams::ShardReader::open(http, &self.endpoint, &table).await;
            *reader = Some(opened.expect("the Messages table has a stream"));
        }
        let reader = reader.as_mut().unwrap_or_else(|| unreachable!());
        // The first read finds the shards and reads them; an emulator has a write's record there at once. A
        // stream that was never written to may have no shard yet: a few tries, then nothing.
        let mut records = Vec::new();
        for _ in 0..10 {
            let got = reader.read().await;
            if got.is_empty() && reader.following() {
                break;
            }
            records.extend(got);
        }
        let records = source.deliverable(records, reader.stream_arn(), &self.stack.naming.region);
        serde_json::json!({ "Records": records })
    }

    pub async fn drain(&self, queue_logical_id: &str) -> Vec<String> {
        let url = self.stack.queue_url(queue_logical_id).expect("queue");
        let mut out = Vec::new();
        loop {
            let r = self
                .sqs
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(10)
                .send()
                .await
                .expect("receive");
            let messages = r.messages.unwrap_or_default();
            if messages.is_empty() {
                return out;
            }
            for m in messages {
                if let Some(h) = m.receipt_handle() {
                    self.sqs
                        .delete_message()
                        .queue_url(&url)
                        .receipt_handle(h)
                        .send()
                        .await
                        .expect("delete");
                }
                out.extend(m.body);
            }
        }
    }
}

/// An event of `events/` (shaped as AWS sends it), as JSON to adjust before use.
pub fn event(name: &str) -> Value {
    let path = workspace_root().join("events").join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("event JSON")
}

/// A WebSocket route event for `user` on `connection` carrying `body`, from `events/{template}.json`.
pub fn ws_event(template: &str, user: &str, connection: &str, body: Option<&str>) -> Value {
    let mut e = event(template);
    let ctx = &mut e["requestContext"];
    ctx["connectionId"] = connection.into();
    ctx["authorizer"]["principalId"] = user.into();
    ctx["authorizer"]["userId"] = user.into();
    let now = natter_core::now_ms();
    ctx["requestTimeEpoch"] = now.into();
    if let Some(b) = body {
        e["body"] = b.into();
    }
    e
}

/// An SQS event carrying `bodies`, shaped as `events/index-sqs.json`, for the queue `queue_arn`.
pub fn sqs_event(bodies: &[String], queue_arn: &str) -> Value {
    let mut e = event("index-sqs");
    let template = e["Records"][0].clone();
    e["Records"] = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let mut r = template.clone();
            r["messageId"] = format!("msg-{i}-{}", ulid::Ulid::generate()).into();
            r["body"] = b.clone().into();
            r["eventSourceARN"] = queue_arn.into();
            r
        })
        .collect();
    e
}

/// A Lambda invocation of `payload` with a deadline `timeout_ms` away.
pub fn invocation<T: serde::de::DeserializeOwned>(payload: Value, timeout_ms: u64) -> lambda_event::LambdaEvent<T> {
    let mut ctx = lambda_event::Context::default();
    ctx.request_id = ulid::Ulid::generate().to_string();
    ctx.deadline = natter_core::now_ms() as u64 + timeout_ms;
    lambda_event::LambdaEvent::new(serde_json::from_value(payload).expect("event shape"), ctx)
}

/// `lambda_runtime`'s event types, re-exported for tests.
pub mod lambda_event {
    pub use natter_core::lambda::lambda_runtime::{Context, LambdaEvent};
}

/// The frame a route response carries back to the caller, parsed; `None` when the route answers nothing.
pub fn reply_frame(response: &natter_core::lambda::ApiGatewayProxyResponse) -> Option<Value> {
    use natter_core::lambda::Body;
    match response.body.as_ref()? {
        Body::Text(t) => Some(serde_json::from_str(t).expect("reply is JSON")),
        Body::Binary(b) => Some(serde_json::from_slice(b).expect("reply is JSON")),
        Body::Empty => None,
        _ => None,
    }
}

#[derive(Default)]
struct StubState {
    posts: Mutex<Vec<(String, String)>>,
    gone: Mutex<HashSet<String>>,
}

/// A @connections endpoint that records posts and answers 410 for connections it is told are gone.
#[derive(Clone)]
pub struct ConnectionsStub {
    pub base: String,
    state: Arc<StubState>,
}

async fn stub_post(
    State(s): State<Arc<StubState>>,
    Path((_stage, id)): Path<(String, String)>,
    body: Bytes,
) -> impl IntoResponse {
    if s.gone.lock().unwrap().contains(&id) {
        return (
            StatusCode::GONE,
            [("x-amzn-ErrorType", "GoneException")],
            r#"{"message":"Gone"}"#.to_owned(),
        );
    }
    s.posts
        .lock()
        .unwrap()
        .push((id, String::from_utf8_lossy(&body).into_owned()));
    (StatusCode::OK, [("x-amzn-ErrorType", "")], String::new())
}

impl ConnectionsStub {
    pub async fn start() -> Self {
        let state = Arc::new(StubState::default());
        let app = Router::new()
            .route("/{stage}/@connections/{id}", post(stub_post))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { base, state }
    }

    pub fn mark_gone(&self, connection: &str) {
        self.state.gone.lock().unwrap().insert(connection.to_owned());
    }

    /// The frames posted to a connection, parsed.
    pub fn posts_to(&self, connection: &str) -> Vec<Value> {
        self.state
            .posts
            .lock()
            .unwrap()
            .iter()
            .filter(|(c, _)| c == connection)
            .map(|(_, b)| serde_json::from_str(b).unwrap_or(Value::String(b.clone())))
            .collect()
    }

    pub fn post_count(&self) -> usize {
        self.state.posts.lock().unwrap().len()
    }
}
