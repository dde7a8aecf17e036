//! The Lambda runtime: each function runs as its real binary, speaking the Lambda Runtime API
//! (`/2018-06-01/runtime/invocation/next`, `/response`, `/error`, `/init/error`) to natter-local, exactly as it
//! does to Lambda. Every instance gets a Runtime API listener of its own, so natter-local always knows which
//! process holds which invocation: a crash fails that invocation, a timeout kills that process. Overlapping
//! invocations start more instances, up to a concurrency limit; beyond it they queue.

use crate::stack::FunctionSpec;
use axum::{
    Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use std::{
    collections::HashMap,
    path::PathBuf,
    process::Stdio,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::Command,
    sync::{Notify, oneshot},
};
use tracing::{debug, warn};

/// Why an invocation produced no response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvokeError {
    /// The handler returned an error (`/invocation/{id}/error`).
    #[error("{error_type}: {message}")]
    Function { error_type: String, message: String },
    #[error("the function process exited during the invocation")]
    Crashed,
    #[error("the function timed out after {0} s")]
    Timeout(u64),
    #[error("the function failed to initialize: {0}")]
    Init(String),
    #[error("the function could not be started: {0}")]
    Spawn(String),
}

/// Where function output goes: (function logical id, one line).
pub type LogSink = Arc<dyn Fn(&str, &str) + Send + Sync>;

/// Prints each line with the function's name in front.
pub fn stdout_sink() -> LogSink {
    Arc::new(|function, line| println!("[{function}] {line}"))
}

/// How the runtime starts function processes.
#[derive(Clone)]
pub struct RuntimeOptions {
    /// Where cargo put the function binaries (target/debug by default).
    pub bin_dir: PathBuf,
    /// Binaries that replace a function's own (logical id -> path): for tests of crashes and timeouts.
    pub binaries: HashMap<String, PathBuf>,
    /// Instances per function at most.
    pub concurrency: usize,
    pub region: String,
    pub account: String,
    /// The emulator every SDK call goes to (`AWS_ENDPOINT_URL`); `None` for AWS itself.
    pub emulator: Option<String>,
    pub log: LogSink,
}

struct Job {
    id: String,
    payload: Bytes,
    reply: oneshot::Sender<Result<Bytes, InvokeError>>,
}

struct Current {
    id: String,
    reply: oneshot::Sender<Result<Bytes, InvokeError>>,
    started: Instant,
}

struct Instance {
    id: u64,
    current: Mutex<Option<Current>>,
    dead: Notify,
    is_dead: std::sync::atomic::AtomicBool,
    kill: Mutex<Option<oneshot::Sender<()>>>,
    init_error: Mutex<Option<String>>,
    started: Instant,
    ready: std::sync::OnceLock<Duration>,
    pid: std::sync::atomic::AtomicU32,
}

impl Instance {
    fn take_current(&self, id: Option<&str>) -> Option<Current> {
        let mut c = self.current.lock().unwrap_or_else(|e| e.into_inner());
        match (&*c, id) {
            (Some(cur), Some(id)) if cur.id != id => None,
            (Some(_), _) => c.take(),
            (None, _) => None,
        }
    }

    fn kill(&self) {
        if let Some(k) = self.kill.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = k.send(());
        }
    }
}

/// Counters of one function, for natter-local's report and the benchmarks.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct FunctionStats {
    pub instances_started: u64,
    pub invocations: u64,
    pub errors: u64,
    pub crashes: u64,
    pub timeouts: u64,
    /// Process start to the first `next` call, per instance (cold start).
    pub init_ms: Vec<f64>,
    /// Invocation durations (handed out to answered).
    pub duration_ms: Vec<f64>,
    /// CPU time of the function's processes (user + system), sampled after each invocation.
    pub cpu_ms: f64,
    /// The memory the template gives the function (what Lambda bills GB-seconds on).
    pub memory_mb: u64,
}

/// One function: its instances and the queue of invocations they take from.
pub struct Function {
    pub spec: FunctionSpec,
    exe: PathBuf,
    opts: RuntimeOptions,
    tx: async_channel::Sender<Job>,
    rx: async_channel::Receiver<Job>,
    instances: Mutex<HashMap<u64, Arc<Instance>>>,
    next_instance: AtomicU64,
    idle: AtomicUsize,
    stats: Mutex<FunctionStats>,
    /// Last CPU sample of every instance ever started.
    cpu: Mutex<HashMap<u64, f64>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Function {
    pub fn new(spec: FunctionSpec, opts: RuntimeOptions) -> Arc<Self> {
        let exe = opts
            .binaries
            .get(&spec.logical_id)
            .cloned()
            .unwrap_or_else(|| opts.bin_dir.join(&spec.binary));
        let (tx, rx) = async_channel::unbounded();
        Arc::new(Self {
            spec,
            exe,
            opts,
            tx,
            rx,
            instances: Mutex::new(HashMap::new()),
            next_instance: AtomicU64::new(1),
            idle: AtomicUsize::new(0),
            stats: Mutex::new(FunctionStats::default()),
            cpu: Mutex::new(HashMap::new()),
        })
    }

    /// The function's logical id in the template (what logs and reports call it).
    pub fn logical_id(&self) -> &str {
        &self.spec.logical_id
    }

    pub fn exe(&self) -> &std::path::Path {
        &self.exe
    }

    pub fn stats(&self) -> FunctionStats {
        for i in lock(&self.instances).values() {
            self.sample_cpu(i);
        }
        let mut s = lock(&self.stats).clone();
        s.cpu_ms = lock(&self.cpu).values().sum();
        s.memory_mb = self.spec.memory_mb;
        s
    }

    fn record_duration(&self, d: Duration) {
        let mut s = lock(&self.stats);
        if s.duration_ms.len() < 100_000 {
            s.duration_ms.push(d.as_secs_f64() * 1000.0);
        }
    }

    fn sample_cpu(&self, instance: &Instance) {
        if let Some(ms) = crate::process::cpu_ms(instance.pid.load(Ordering::Relaxed)) {
            lock(&self.cpu).insert(instance.id, ms);
        }
    }

    pub fn instance_count(&self) -> usize {
        lock(&self.instances).len()
    }

    fn arn(&self) -> String {
        format!(
            "arn:aws:lambda:{}:{}:function:{}",
            self.opts.region, self.opts.account, self.spec.name
        )
    }

    /// Starts one instance now (natter-local warms one of each at start, so a broken binary shows at once).
    pub async fn warm(self: &Arc<Self>) -> Result<(), InvokeError> {
        self.spawn_instance().await
    }

    /// Invokes the function with `payload` and waits for its response.
    pub async fn invoke(self: &Arc<Self>, payload: &serde_json::Value) -> Result<serde_json::Value, InvokeError> {
        let body = Bytes::from(serde_json::to_vec(payload).unwrap_or_default());
        let out = self.invoke_raw(body).await?;
        Ok(serde_json::from_slice(&out).unwrap_or(serde_json::Value::Null))
    }

    pub async fn invoke_raw(self: &Arc<Self>, payload: Bytes) -> Result<Bytes, InvokeError> {
        let (reply, rx) = oneshot::channel();
        let id = ulid::Ulid::generate().to_string().to_lowercase();
        lock(&self.stats).invocations += 1;
        // Scale out when nobody is waiting for work, as Lambda starts a new execution environment.
        if self.idle.load(Ordering::SeqCst) == 0
            && self.instance_count() < self.opts.concurrency
            && let Err(e) = self.spawn_instance().await
        {
            lock(&self.stats).errors += 1;
            return Err(e);
        }
        if self.tx.send(Job { id, payload, reply }).await.is_err() {
            return Err(InvokeError::Spawn("the function's queue is closed".into()));
        }
        // The instance enforces the function timeout; this only guards against waiting forever in the queue.
        let cap = Duration::from_secs(self.spec.timeout_secs + 60);
        let result = match tokio::time::timeout(cap, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(InvokeError::Crashed),
            Err(_) => Err(InvokeError::Timeout(self.spec.timeout_secs)),
        };
        if let Err(e) = &result {
            let mut s = lock(&self.stats);
            s.errors += 1;
            match e {
                InvokeError::Crashed => s.crashes += 1,
                InvokeError::Timeout(_) => s.timeouts += 1,
                _ => {}
            }
        }
        result
    }

    async fn spawn_instance(self: &Arc<Self>) -> Result<(), InvokeError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| InvokeError::Spawn(e.to_string()))?;
        let api = listener.local_addr().map_err(|e| InvokeError::Spawn(e.to_string()))?;
        let id = self.next_instance.fetch_add(1, Ordering::SeqCst);
        let (kill_tx, kill_rx) = oneshot::channel();
        let instance = Arc::new(Instance {
            id,
            current: Mutex::new(None),
            dead: Notify::new(),
            is_dead: false.into(),
            kill: Mutex::new(Some(kill_tx)),
            init_error: Mutex::new(None),
            started: Instant::now(),
            ready: std::sync::OnceLock::new(),
            pid: 0.into(),
        });
        let ctx = Arc::new(ApiContext {
            function: self.clone(),
            instance: instance.clone(),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(respond))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(fail))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(ctx);
        let server_instance = instance.clone();
        tokio::spawn(async move {
            let shutdown = async move {
                while !server_instance.is_dead.load(Ordering::SeqCst) {
                    server_instance.dead.notified().await;
                }
            };
            let _ = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
        });

        let mut cmd = Command::new(&self.exe);
        cmd.env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("TZ", ":UTC")
            .env("AWS_LAMBDA_RUNTIME_API", api.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", &self.spec.name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", self.spec.memory_mb.to_string())
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{}", self.spec.name))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", format!("natter-local/{id}"))
            .env("AWS_REGION", &self.opts.region)
            .env("AWS_DEFAULT_REGION", &self.opts.region)
            .env("_HANDLER", "bootstrap");
        match &self.opts.emulator {
            Some(endpoint) => {
                // Each function signs with its own key id: its name, unless natter-local gave it a key of an IAM
                // user of its own in the emulator (`keys.rs`, set in its environment). The emulator proxy checks
                // its calls against its IAM policy by that key (`iam.rs`).
                cmd.env("AWS_ENDPOINT_URL", endpoint)
                    .env("AWS_ACCESS_KEY_ID", &self.spec.name)
                    .env("AWS_SECRET_ACCESS_KEY", "natter-local");
            }
            None => {
                // Against AWS itself the functions use the caller's credentials.
                for (k, v) in std::env::vars().filter(|(k, _)| k.starts_with("AWS_") && k != "AWS_ENDPOINT_URL") {
                    cmd.env(k, v);
                }
            }
        }
        cmd.envs(&self.spec.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        crate::process::die_with_parent_tokio(&mut cmd);
        let mut child = cmd
            .spawn()
            .map_err(|e| InvokeError::Spawn(format!("{}: {e}", self.exe.display())))?;
        instance.pid.store(child.id().unwrap_or_default(), Ordering::Relaxed);
        lock(&self.instances).insert(id, instance.clone());
        lock(&self.stats).instances_started += 1;
        debug!(function = self.logical_id(), instance = id, "instance started");

        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            child.stderr.take().map(|s| Box::new(s) as _),
        ]
        .into_iter()
        .flatten()
        {
            let log = self.opts.log.clone();
            let name = self.spec.logical_id.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    log(&name, &line);
                }
            });
        }

        let function = self.clone();
        tokio::spawn(async move {
            let status = tokio::select! {
                s = child.wait() => s,
                _ = kill_rx => {
                    let _ = child.start_kill();
                    child.wait().await
                }
            };
            instance.is_dead.store(true, Ordering::SeqCst);
            instance.dead.notify_waiters();
            lock(&function.instances).remove(&instance.id);
            let init_error = lock(&instance.init_error).take();
            if let Some(cur) = instance.take_current(None) {
                let _ = cur.reply.send(Err(InvokeError::Crashed));
            }
            match (&init_error, instance.ready.get()) {
                (Some(e), _) => warn!(function = function.logical_id(), error = %e, "init failed"),
                (None, None) => warn!(
                    function = function.logical_id(),
                    ?status,
                    "exited before asking for work"
                ),
                (None, Some(_)) => debug!(function = function.logical_id(), ?status, "instance exited"),
            }
            // Invocations queued for an instance that never came up would wait forever without this.
            if instance.ready.get().is_none() && function.instance_count() == 0 {
                let reason = init_error.unwrap_or_else(|| format!("exited with {status:?} during init"));
                while let Ok(job) = function.rx.try_recv() {
                    let _ = job.reply.send(Err(InvokeError::Init(reason.clone())));
                }
            }
        });
        Ok(())
    }

    /// Stops every instance.
    pub fn shutdown(&self) {
        self.tx.close();
        for i in lock(&self.instances).values() {
            i.kill();
        }
    }
}

struct ApiContext {
    function: Arc<Function>,
    instance: Arc<Instance>,
}

async fn next(State(ctx): State<Arc<ApiContext>>) -> Response {
    let (f, inst) = (&ctx.function, &ctx.instance);
    if inst.ready.set(inst.started.elapsed()).is_ok() {
        lock(&f.stats)
            .init_ms
            .push(inst.started.elapsed().as_secs_f64() * 1000.0);
    }
    loop {
        f.idle.fetch_add(1, Ordering::SeqCst);
        let job = tokio::select! {
            j = f.rx.recv() => j,
            _ = inst.dead.notified() => Err(async_channel::RecvError),
        };
        f.idle.fetch_sub(1, Ordering::SeqCst);
        let Ok(job) = job else {
            return StatusCode::GONE.into_response();
        };
        if inst.is_dead.load(Ordering::SeqCst) {
            // Hand it to a live instance instead.
            let _ = f.tx.send(job).await;
            return StatusCode::GONE.into_response();
        }
        if job.reply.is_closed() {
            continue;
        }
        let timeout_ms = f.spec.timeout_secs * 1000;
        let deadline = natter_core::now_ms() as u64 + timeout_ms;
        *lock(&inst.current) = Some(Current {
            id: job.id.clone(),
            reply: job.reply,
            started: Instant::now(),
        });
        // The function timeout: past it the process is killed, as Lambda does.
        let watchdog_inst = inst.clone();
        let watchdog_id = job.id.clone();
        let timeout_secs = f.spec.timeout_secs;
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(timeout_ms)).await;
            if let Some(cur) = watchdog_inst.take_current(Some(&watchdog_id)) {
                let _ = cur.reply.send(Err(InvokeError::Timeout(timeout_secs)));
                watchdog_inst.kill();
            }
        });
        let mut headers = HeaderMap::new();
        let h = |v: String| HeaderValue::from_str(&v).unwrap_or(HeaderValue::from_static(""));
        headers.insert("Lambda-Runtime-Aws-Request-Id", h(job.id));
        headers.insert("Lambda-Runtime-Deadline-Ms", h(deadline.to_string()));
        headers.insert("Lambda-Runtime-Invoked-Function-Arn", h(f.arn()));
        headers.insert(
            "Lambda-Runtime-Trace-Id",
            h(format!(
                "Root=1-{:08x}-{:024x};Sampled=0",
                deadline / 1000,
                rand::random::<u128>() >> 32
            )),
        );
        headers.insert("Content-Type", HeaderValue::from_static("application/json"));
        return (StatusCode::OK, headers, job.payload).into_response();
    }
}

async fn respond(State(ctx): State<Arc<ApiContext>>, Path(id): Path<String>, body: Bytes) -> Response {
    ctx.function.sample_cpu(&ctx.instance);
    match ctx.instance.take_current(Some(&id)) {
        Some(cur) => {
            ctx.function.record_duration(cur.started.elapsed());
            let _ = cur.reply.send(Ok(body));
            (StatusCode::ACCEPTED, r#"{"status":"OK"}"#).into_response()
        }
        None => (
            StatusCode::BAD_REQUEST,
            r#"{"errorMessage":"unknown request id","errorType":"InvalidRequestID"}"#,
        )
            .into_response(),
    }
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ErrorBody {
    #[serde(default)]
    error_type: String,
    #[serde(default)]
    error_message: String,
}

async fn fail(State(ctx): State<Arc<ApiContext>>, Path(id): Path<String>, body: Bytes) -> Response {
    let e: ErrorBody = serde_json::from_slice(&body).unwrap_or_default();
    (ctx.function.opts.log)(
        ctx.function.logical_id(),
        &format!("invocation {id} failed: {}: {}", e.error_type, e.error_message),
    );
    match ctx.instance.take_current(Some(&id)) {
        Some(cur) => {
            let _ = cur.reply.send(Err(InvokeError::Function {
                error_type: e.error_type,
                message: e.error_message,
            }));
            (StatusCode::ACCEPTED, r#"{"status":"OK"}"#).into_response()
        }
        None => StatusCode::BAD_REQUEST.into_response(),
    }
}

async fn init_error(State(ctx): State<Arc<ApiContext>>, body: Bytes) -> Response {
    let e: ErrorBody = serde_json::from_slice(&body).unwrap_or_default();
    *lock(&ctx.instance.init_error) = Some(format!("{}: {}", e.error_type, e.error_message));
    (StatusCode::ACCEPTED, r#"{"status":"OK"}"#).into_response()
}
