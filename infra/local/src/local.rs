//! Starting and stopping the whole local stack: provision the emulator, start the functions, the SQS pollers and
//! the gateway, all from template.yaml.

use crate::{
    gateway::{Gateway, GatewayOptions},
    lag::Replica,
    poller::Mapping,
    provision::{Clients, ProvisionError, ProvisionOptions, provision},
    proxy::{EmulatorProxy, Upstreams},
    runtime::{Function, LogSink, RuntimeOptions},
    stack::{Naming, Stack},
    template::{Template, TemplateError, plain},
};
use std::{collections::HashMap, net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};
use tokio::{sync::watch, task::JoinHandle};

/// The secret local tokens are signed with: `NATTER_JWT_SECRET`, or the development secret.
pub fn dev_secret() -> String {
    std::env::var("NATTER_JWT_SECRET").unwrap_or_else(|_| natter_core::auth::DEV_SECRET.to_owned())
}

/// Parameters natter-local gives the template unless told otherwise.
pub fn local_parameter_defaults() -> HashMap<String, String> {
    HashMap::from([
        ("PresenceDelaySeconds".to_owned(), "2".to_owned()),
        // A reconnecting user is spared a notification locally after 2 s, as after 5 s on AWS.
        ("NotifyDelaySeconds".to_owned(), "2".to_owned()),
    ])
}

#[derive(Clone)]
pub struct LocalOptions {
    pub template: PathBuf,
    pub host: String,
    /// 0 picks a free port.
    pub port: u16,
    /// The emulator (or AWS, with `None` and `aws` = true).
    pub endpoint: Option<String>,
    /// API Gateway's account-level limits to enforce (off unless set).
    pub limits: crate::gateway::AccountLimits,
    /// Eventually consistent reads see the tables this long ago (`--read-lag`), as on DynamoDB; `None`: no lag.
    pub read_lag: Option<Duration>,
    /// The emulator the read-lag replica runs on.
    pub replica_kind: crate::emulator::Kind,
    /// Another endpoint for DynamoDB alone (DynamoDB Local, a second emulator); `endpoint` serves the rest.
    pub dynamodb_endpoint: Option<String>,
    /// The key connection tokens are signed with: the value of the secret the template creates, and what
    /// `/_natter/token` signs with.
    pub jwt_secret: String,
    /// The account id local ARNs name (the emulator's; provisioning reads queue ARNs back from it anyway).
    pub account: String,
    pub bin_dir: PathBuf,
    pub binaries: HashMap<String, PathBuf>,
    pub concurrency: usize,
    pub pollers: usize,
    pub idle_timeout: Duration,
    pub max_duration: Duration,
    pub parameters: HashMap<String, String>,
    /// Prepended to every table, queue and function name.
    pub prefix: String,
    pub max_visibility: Option<u64>,
    pub warm: bool,
    pub log: LogSink,
    /// Print the functions' EMF metric lines too (they are always collected for `/_natter/stats`).
    pub show_metrics: bool,
}

impl LocalOptions {
    pub fn new(endpoint: Option<String>) -> Self {
        let root = crate::process::workspace_root();
        Self {
            template: root.join("template.yaml"),
            host: "127.0.0.1".into(),
            port: 3001,
            endpoint,
            dynamodb_endpoint: None,
            read_lag: None,
            replica_kind: crate::emulator::Kind::from_env().unwrap_or_default(),
            jwt_secret: dev_secret(),
            limits: Default::default(),
            account: crate::emulator::DEFAULT_ACCOUNT.into(),
            bin_dir: root.join("target/debug"),
            binaries: HashMap::new(),
            concurrency: 4,
            pollers: 2,
            idle_timeout: Duration::from_secs(600),
            max_duration: Duration::from_secs(7200),
            parameters: local_parameter_defaults(),
            prefix: String::new(),
            max_visibility: None,
            warm: true,
            log: crate::runtime::stdout_sink(),
            show_metrics: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    #[error("cannot listen on {0}: {1}")]
    Listen(String, std::io::Error),
    #[error("function binary {0} is missing; build them with `cargo build --workspace --bins` (or `make dev`)")]
    MissingBinary(String),
    #[error("the read-lag replica: {0}")]
    Replica(#[from] crate::lag::LagError),
    #[error("function {0} failed to start: {1}")]
    Start(String, String),
}

/// A running local stack.
pub struct Local {
    /// `ws://host:port`: what clients connect to (append `?token=JWT`).
    pub ws_url: String,
    /// `http://host:port/{stage}`: the @connections endpoint the functions post to.
    pub management_url: String,
    pub emulator: Option<String>,
    /// Between the functions and the emulator (none against AWS): its faults break the backend on purpose.
    pub proxy: Option<EmulatorProxy>,
    /// The replica eventual reads go to when read lag is on.
    pub replica: Option<Replica>,
    /// Moves dead-lettered jobs back (`natter-local redrive`).
    pub redriver: crate::redrive::Redriver,
    pub stack: Stack,
    pub functions: HashMap<String, Arc<Function>>,
    pub gateway: Arc<Gateway>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Local {
    pub async fn start(opts: LocalOptions) -> Result<Self, LocalError> {
        let listener = tokio::net::TcpListener::bind((opts.host.as_str(), opts.port))
            .await
            .map_err(|e| LocalError::Listen(format!("{}:{}", opts.host, opts.port), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| LocalError::Listen(opts.host.clone(), e))?;
        let http = format!("http://{addr}");

        let template = Template::load(&opts.template)?;
        let mut naming = Naming::local(
            opts.endpoint
                .as_deref()
                .unwrap_or("https://sqs.us-east-1.amazonaws.com"),
        );
        naming.prefix = opts.prefix.clone();
        naming.account = opts.account.clone();
        naming.gateway = Some(http.clone());
        let mut parameters = opts.parameters.clone();
        let declared = template.parameter_names();
        let sdk = match &opts.endpoint {
            Some(e) => crate::emulator::sdk_for(e).await,
            None => natter_core::aws::sdk_config().await,
        };
        // On an emulator, push notifications go to platform applications natter-local makes (the platforms'
        // credentials are never needed: nothing leaves this machine).
        if opts.endpoint.is_some() {
            let sns = aws_sdk_sns::Client::new(&sdk);
            for (param, arn) in crate::provision::platform_applications(&sns, &naming.prefix).await? {
                parameters.entry(param).or_insert(arn);
            }
        }
        parameters.retain(|k, _| declared.contains(k));
        let mut stack = Stack::new(template, naming.clone(), &parameters)?;
        let dynamo_sdk = match &opts.dynamodb_endpoint {
            Some(e) => crate::emulator::sdk_for(e).await,
            None => sdk.clone(),
        };
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let patient = crate::provision::patient();
        let clients = Clients {
            dynamodb: aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(&dynamo_sdk)
                    .timeout_config(patient.clone())
                    .build(),
            ),
            sqs: aws_sdk_sqs::Client::from_conf(
                aws_sdk_sqs::config::Builder::from(&sdk)
                    .timeout_config(patient.clone())
                    .build(),
            ),
            secrets: aws_sdk_secretsmanager::Client::from_conf(
                aws_sdk_secretsmanager::config::Builder::from(&sdk)
                    .timeout_config(patient.clone())
                    .build(),
            ),
            s3: crate::buckets::client(&sdk, patient),
        };
        provision(
            &mut stack,
            &clients,
            &ProvisionOptions {
                max_visibility: opts.max_visibility,
                secret_value: opts.jwt_secret.clone(),
                streams: opts.read_lag.is_some(),
            },
        )
        .await?;

        // Read lag: a replica of every table, `read_lag` behind, serves the eventual reads.
        let replica = match (opts.read_lag, &opts.endpoint) {
            (Some(lag), Some(_)) => {
                let primary = opts
                    .dynamodb_endpoint
                    .clone()
                    .or(opts.endpoint.clone())
                    .unwrap_or_default();
                Some(Replica::start(opts.replica_kind, &opts.account, &primary, &stack.tables()?, lag).await?)
            }
            _ => None,
        };
        // Every function's own credentials in the emulator (it verifies the presigned URLs they sign).
        let keys = match &opts.endpoint {
            Some(e) => {
                let names: Vec<String> = stack.functions()?.into_iter().map(|f| f.name).collect();
                crate::keys::function_keys(e, &names).await?
            }
            None => HashMap::new(),
        };
        // The functions and pollers reach the emulator through the proxy (kept-alive connections, DynamoDB to its
        // own endpoint if it has one, faults on demand).
        let notifications = Arc::new(crate::notifications::Notifications::default());
        let proxy = match &opts.endpoint {
            Some(e) => Some(
                EmulatorProxy::start(&Upstreams {
                    default: e.clone(),
                    dynamodb: opts.dynamodb_endpoint.clone(),
                    replica: replica.as_ref().map(|r| r.endpoint.clone()),
                    iam: Some(Arc::new(crate::iam::policies(
                        &stack,
                        &keys.iter().map(|(f, k)| (f.clone(), k.id.clone())).collect(),
                    )?)),
                    notifications: notifications.clone(),
                    cors: Arc::new(crate::cors::Cors::new(&crate::buckets::buckets(&stack)?)),
                })
                .await
                .map_err(|e| LocalError::Listen("the emulator proxy".into(), e))?,
            ),
            None => None,
        };
        let via = proxy.as_ref().map(|p| p.url.clone());
        let sqs = match &via {
            Some(url) => aws_sdk_sqs::Client::new(&crate::emulator::sdk_for(url).await),
            None => sqs,
        };

        let collector = Arc::new(crate::stats::Collector::default());
        let runtime = RuntimeOptions {
            bin_dir: opts.bin_dir.clone(),
            binaries: opts.binaries.clone(),
            concurrency: opts.concurrency.max(1),
            region: naming.region.clone(),
            account: naming.account.clone(),
            emulator: via.clone(),
            log: crate::stats::collecting(collector.clone(), opts.log.clone(), opts.show_metrics),
        };
        let mut functions = HashMap::new();
        for mut spec in stack.functions()? {
            if let Some(key) = keys.get(&spec.name) {
                spec.env.insert("AWS_ACCESS_KEY_ID".into(), key.id.clone());
                spec.env.insert("AWS_SECRET_ACCESS_KEY".into(), key.secret.clone());
            }
            let f = Function::new(spec, runtime.clone());
            if !f.exe().is_file() {
                return Err(LocalError::MissingBinary(f.exe().display().to_string()));
            }
            functions.insert(f.spec.logical_id.clone(), f);
        }
        if opts.warm {
            let warmed = futures::future::join_all(
                functions
                    .values()
                    .map(|f| async move { (f.logical_id().to_owned(), f.warm().await) }),
            )
            .await;
            for (name, r) in warmed {
                r.map_err(|e| LocalError::Start(name, e.to_string()))?;
            }
        }

        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        for f in functions.values() {
            for source in &f.spec.sqs_sources {
                let queue_url = stack.queue_url(&source.queue).unwrap_or_default();
                let queue_arn = plain(&stack.names.attrs[&(source.queue.clone(), "Arn".to_owned())]);
                let mapping = Mapping {
                    sqs: sqs.clone(),
                    queue_url,
                    queue_arn,
                    region: naming.region.clone(),
                    source: source.clone(),
                    function: f.clone(),
                };
                for _ in 0..opts.pollers.max(1) {
                    tasks.push(tokio::spawn(mapping.clone().run(stop_rx.clone())));
                }
            }
            // A stream is read in order by one poller per shard, as Lambda does; the emulator's own endpoint,
            // not the proxy: the service reads it, not the function.
            let dynamodb = opts.dynamodb_endpoint.clone().or(opts.endpoint.clone());
            for (source, endpoint) in f.spec.stream_sources.iter().zip(std::iter::repeat(dynamodb)) {
                let Some(endpoint) = endpoint else { continue };
                let mapping = crate::stream_source::Mapping {
                    http: crate::streams::Http::default(),
                    endpoint,
                    table: plain(&stack.names.refs[&source.table]),
                    region: naming.region.clone(),
                    source: source.clone(),
                    function: f.clone(),
                    sqs: sqs.clone(),
                    on_failure_url: source.on_failure.as_deref().and_then(|q| stack.queue_url(q)),
                };
                tasks.push(tokio::spawn(mapping.run(stop_rx.clone())));
            }
        }

        let api = stack.api()?;
        let stage = api.stage.clone();
        let gateway = Gateway::new(
            api,
            functions.clone(),
            collector,
            GatewayOptions {
                idle_timeout: opts.idle_timeout,
                max_duration: opts.max_duration,
                api_id: naming.api_id.clone(),
                region: naming.region.clone(),
                account: naming.account.clone(),
                domain: addr.to_string(),
                limits: opts.limits.clone(),
            },
        );
        let redriver = crate::redrive::Redriver::new(&stack, sqs.clone());
        let mints = crate::web::mints_tokens(&opts.jwt_secret, &opts.host, opts.endpoint.is_some());
        let mut control = gateway
            .stats_router()
            .merge(redriver.clone().control())
            .merge(crate::web::token_router(opts.jwt_secret.clone(), mints));
        if let Some(p) = &proxy {
            control = control
                .merge(crate::proxy::control(p.faults.clone()))
                .merge(notifications.clone().router());
        }
        let router = gateway
            .router()
            .merge(crate::web::router())
            .merge(crate::guard::local_only(control));
        let app = router.into_make_service_with_connect_info::<SocketAddr>();
        let mut server_stop = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            let shutdown = async move {
                let _ = server_stop.wait_for(|s| *s).await;
            };
            let _ = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
        }));

        Ok(Self {
            ws_url: format!("ws://{addr}"),
            management_url: format!("{http}/{stage}"),
            emulator: opts.endpoint.clone(),
            proxy,
            replica,
            redriver,
            stack,
            functions,
            gateway,
            stop,
            tasks,
        })
    }

    pub fn function(&self, logical_id: &str) -> Arc<Function> {
        self.functions[logical_id].clone()
    }

    /// Stops the gateway, the pollers and every function process.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for f in self.functions.values() {
            f.shutdown();
        }
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(3), t).await;
        }
        if let Some(p) = self.proxy {
            p.stop().await;
        }
        if let Some(r) = self.replica {
            r.stop().await;
        }
    }

    /// The faults of the emulator proxy (outage, throttling); `None` against AWS.
    pub fn faults(&self) -> Option<Arc<crate::proxy::Faults>> {
        self.proxy.as_ref().map(|p| p.faults.clone())
    }
}
