//! The scenarios: set-up, load at a fixed rate, drain, and the report.

pub use crate::scenario::{Options, Report, Scenario};
use crate::{
    client::Client,
    cost::{PRICES, PerMessage, per_million},
    record::{Percentiles, Recorder, SendRecord},
    stats::{diff, get_json, quiesce},
};
use indicatif::{ProgressBar, ProgressStyle};
use natter_core::ids::UserId;
use serde_json::{Value, json};
use std::{
    collections::BTreeSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

fn token(secret: &str, user: &str) -> String {
    natter_core::auth::mint(
        secret.as_bytes(),
        &UserId::parse(user).unwrap_or_else(|_| unreachable!()),
        3600,
    )
}

async fn connect_all(o: &Options, users: &[String], rec: &Arc<Recorder>) -> Result<Vec<Arc<Client>>, String> {
    let secret = o.secret.clone().unwrap_or_default();
    let mut out = Vec::new();
    // A few at a time: API Gateway admits 500 new connections per second per account, an emulator fewer.
    for chunk in users.chunks(16) {
        let joins = chunk.iter().map(|u| {
            let t = token(&secret, u);
            let rec = rec.clone();
            async move { Client::connect(&o.url, u, &t, rec, o.group_acks()).await }
        });
        for c in futures::future::join_all(joins).await {
            out.push(c?);
        }
    }
    Ok(out)
}

/// Registers users without keeping them online (a connect and a close each).
async fn register(o: &Options, users: &[String], rec: &Arc<Recorder>) -> Result<(), String> {
    for c in connect_all(o, users, rec).await? {
        c.close();
    }
    // Their disconnects and presence events follow; let them pass before loading the stack further.
    tokio::time::sleep(Duration::from_millis(500 + 10 * users.len() as u64)).await;
    Ok(())
}

/// Each client joins `group` from its invitation, a few at a time.
async fn join(clients: &[Arc<Client>], group: &str) -> Result<(), String> {
    for chunk in clients.chunks(16) {
        let joins = chunk.iter().map(|c| {
            c.request(
                json!({"action": "group", "op": "join", "group": group}),
                Duration::from_secs(30),
            )
        });
        for (c, r) in chunk.iter().zip(futures::future::join_all(joins).await) {
            match r {
                Some(r) if r["type"] == "group" => {}
                other => return Err(format!("{} could not join the group: {other:?}", c.user)),
            }
        }
    }
    Ok(())
}

/// Frames the clients sent and received so far.
fn count_frames(clients: &[Arc<Client>]) -> u64 {
    clients
        .iter()
        .map(|c| c.frames_in.load(Ordering::Relaxed) + c.frames_out.load(Ordering::Relaxed))
        .sum()
}

struct Sender {
    user: String,
    /// The sender's current connection (churn replaces it).
    client: Mutex<Arc<Client>>,
    busy: AtomicBool,
    next_seq: AtomicU64,
    target: Value,
    expected: Vec<String>,
}

impl Sender {
    fn new(client: &Arc<Client>, target: Value, expected: Vec<String>) -> Arc<Self> {
        Arc::new(Self {
            user: client.user.clone(),
            client: Mutex::new(client.clone()),
            busy: false.into(),
            next_seq: 1.into(),
            target,
            expected,
        })
    }

    fn client(&self) -> Arc<Client> {
        self.client.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Every client of the run, the replaced ones too (their frames count).
type Clients = Arc<Mutex<Vec<Arc<Client>>>>;

/// Pulls everything `c` missed (every sync page) and records it as delivered; with `ack`, acknowledges it as a
/// client does (the offline scenario leaves that out to measure the sync alone).
async fn sync_all(c: &Client, rec: &Recorder, ack: bool) -> Result<(), String> {
    let mut cursor: Option<String> = None;
    loop {
        let mut f = json!({"action": "sync"});
        if let Some(cur) = &cursor {
            f["cursor"] = cur.clone().into();
        }
        let page = c.request(f, Duration::from_secs(30)).await.ok_or("sync timed out")?;
        let messages = page["messages"].as_array().cloned().unwrap_or_default();
        rec.add_synced(&c.user, &messages, Instant::now());
        let ids: Vec<&str> = messages
            .iter()
            .filter(|m| m["group"].is_null())
            .filter_map(|m| m["messageId"].as_str())
            .collect();
        for chunk in ids.chunks(100).filter(|_| ack) {
            c.send(&json!({"action": "ack", "messageIds": chunk}));
        }
        match page["next"].as_str() {
            Some(n) => cursor = Some(n.to_owned()),
            None => return Ok(()),
        }
    }
}

/// A uniformly random duration in `[lo, hi)`.
fn jitter(lo: Duration, hi: Duration) -> Duration {
    lo + (hi.saturating_sub(lo)).mul_f64(rand::random::<f64>())
}

/// How long a client keeps retrying one thing (a send, a reconnect) before the harness records a failure. Real
/// clients retry for as long as their user waits; a failure here means the backend stayed unusable this long,
/// not that the client stopped early (a refused upgrade or an `unavailable` on a loaded backend loses nothing).
const GIVE_UP: Duration = Duration::from_secs(120);

/// A client's retry pauses: jittered, doubling from `first` up to `cap`, until [`GIVE_UP`] has passed.
struct Backoff {
    pause: Duration,
    cap: Duration,
    until: Instant,
}

impl Backoff {
    fn new(first: Duration, cap: Duration) -> Self {
        Self {
            pause: first,
            cap,
            until: Instant::now() + GIVE_UP,
        }
    }

    /// Sleeps the next pause; false, without sleeping, once the client has given up.
    async fn wait(&mut self) -> bool {
        if Instant::now() >= self.until {
            return false;
        }
        tokio::time::sleep(jitter(self.pause / 2, self.pause * 3 / 2)).await;
        self.pause = (self.pause * 2).min(self.cap);
        true
    }
}

/// Churn: until `stop`, at `churn_per_sec`, a random sender that is not already away drops (half the time
/// without a close frame), stays away for 0.1 to 1.5 s, reconnects and syncs. Returns how many reconnects it made.
async fn churn(
    o: Options,
    senders: Vec<Arc<Sender>>,
    rec: Arc<Recorder>,
    all: Clients,
    stop: Arc<AtomicBool>,
) -> Result<u64, String> {
    let mean = Duration::from_secs_f64(1.0 / o.churn_per_sec.max(0.01));
    let away: Arc<Mutex<BTreeSet<usize>>> = Arc::default();
    let mut trips = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(jitter(mean / 2, mean * 3 / 2)).await;
        let i = (rand::random::<u64>() % senders.len() as u64) as usize;
        if stop.load(Ordering::Relaxed) || !away.lock().unwrap_or_else(|e| e.into_inner()).insert(i) {
            continue;
        }
        let (o, s, rec, all, away) = (o.clone(), senders[i].clone(), rec.clone(), all.clone(), away.clone());
        trips.push(tokio::spawn(async move {
            let back = reconnect(&o, &s, &rec, &all).await;
            away.lock().unwrap_or_else(|e| e.into_inner()).remove(&i);
            back
        }));
    }
    let mut reconnects = 0;
    for t in trips {
        t.await.map_err(|e| e.to_string())??;
        reconnects += 1;
    }
    Ok(reconnects)
}

/// One trip away: drop, wait, connect again, sync and acknowledge what was missed.
async fn reconnect(o: &Options, s: &Sender, rec: &Arc<Recorder>, all: &Clients) -> Result<(), String> {
    let old = s.client();
    if rand::random::<bool>() {
        old.vanish();
    } else {
        old.close();
    }
    tokio::time::sleep(jitter(Duration::from_millis(100), Duration::from_millis(1500))).await;
    let secret = o.secret.clone().unwrap_or_default();
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(4));
    let new = loop {
        let t = token(&secret, &s.user);
        match Client::connect(&o.url, &s.user, &t, rec.clone(), o.group_acks()).await {
            Ok(c) => break c,
            Err(e) if !backoff.wait().await => return Err(format!("reconnect: {e}")),
            Err(_) => {}
        }
    };
    *s.client.lock().unwrap_or_else(|e| e.into_inner()) = new.clone();
    all.lock().unwrap_or_else(|e| e.into_inner()).push(new.clone());
    sync_all(&new, rec, true).await
}

/// How long nothing must run before the counters are read: longer than natter-local's presence delay (2 s).
const QUIET: Duration = Duration::from_secs(3);

pub async fn run(o: Options) -> Result<Report, String> {
    let run_id = ulid::Ulid::generate().to_string()[20..].to_lowercase();
    let user = |i: usize| format!("lg{run_id}-{i}");
    let rec = Arc::new(Recorder::default());
    let before = match &o.stats_url {
        Some(u) => Some(get_json(u).await?),
        None => None,
    };

    // Set-up: who is online, who sends to whom.
    let mut returning: Vec<(String, String)> = Vec::new();
    let (senders, online): (Vec<Arc<Sender>>, Vec<Arc<Client>>) = match o.scenario {
        Scenario::Pairs | Scenario::Churn => {
            let names: Vec<String> = (0..o.clients.max(2) & !1).map(user).collect();
            let clients = connect_all(&o, &names, &rec).await?;
            let senders = (0..names.len())
                .map(|i| Sender::new(&clients[i], json!({"to": names[i ^ 1]}), vec![names[i ^ 1].clone()]))
                .collect();
            (senders, clients)
        }
        Scenario::Offline => {
            let names: Vec<String> = (0..o.clients.max(2) & !1).map(user).collect();
            let (present, away): (Vec<String>, Vec<String>) = names.iter().cloned().partition(|n| {
                n.rsplit('-')
                    .next()
                    .and_then(|i| i.parse::<usize>().ok())
                    .is_some_and(|i| i % 2 == 0)
            });
            register(&o, &away, &rec).await?;
            let clients = connect_all(&o, &present, &rec).await?;
            returning = present.iter().cloned().zip(away.iter().cloned()).collect();
            let senders = clients
                .iter()
                .zip(&away)
                .map(|(c, to)| Sender::new(c, json!({"to": to}), vec![]))
                .collect();
            (senders, clients)
        }
        Scenario::Group => {
            let size = o.group_size.clamp(2, 1001);
            let names: Vec<String> = (0..size).map(user).collect();
            let k = o.online.clamp(1, size);
            register(&o, &names[k..], &rec).await?;
            let clients = connect_all(&o, &names[..k], &rec).await?;
            let created = clients[0]
                .request(
                    json!({"action": "group", "op": "create", "name": "load", "members": &names[1..]}),
                    Duration::from_secs(60),
                )
                .await
                .ok_or("group create timed out")?;
            let group = created["group"]["id"]
                .as_str()
                .ok_or(format!("group create failed: {created}"))?
                .to_owned();
            // Strangers to the creator are only invited: every member joins by itself, the offline ones on a
            // connection of their own for the purpose.
            join(&clients[1..], &group).await?;
            let away = connect_all(&o, &names[k..], &rec).await?;
            join(&away, &group).await?;
            for c in away {
                c.close();
            }
            let senders = clients
                .iter()
                .map(|c| {
                    let expected = names[..k].iter().filter(|n| **n != c.user).cloned().collect();
                    Sender::new(c, json!({"group": group}), expected)
                })
                .collect();
            (senders, clients)
        }
    };
    // Let the set-up settle (its presence events wait out the queue's delay) before measuring the load alone.
    let setup_stats = match &o.stats_url {
        Some(u) => Some(quiesce(u, QUIET).await?),
        None => {
            tokio::time::sleep(QUIET).await;
            None
        }
    };

    let all: Clients = Arc::new(Mutex::new(online.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let churner = (o.scenario == Scenario::Churn && o.churn_per_sec > 0.0).then(|| {
        tokio::spawn(churn(
            o.clone(),
            senders.clone(),
            rec.clone(),
            all.clone(),
            stop.clone(),
        ))
    });

    // Load: one send every 1/rate seconds, round-robin over senders with nothing in flight.
    let frames_at_start = count_frames(&online);
    let planned = (o.rate * o.duration_secs).round() as u64;
    let bar = if o.progress {
        ProgressBar::new(planned)
    } else {
        ProgressBar::hidden()
    };
    if let Ok(style) = ProgressStyle::with_template("{spinner} {elapsed_precise} [{bar:30}] {pos}/{len} sent {msg}") {
        bar.set_style(style);
    }
    let body = "x".repeat(o.body_bytes.max(1));
    let shortfall = Arc::new(AtomicU64::new(0));
    let retries = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / o.rate.max(0.1)));
    let mut i = 0usize;
    for _ in 0..planned {
        tick.tick().await;
        let Some(s) = (0..senders.len())
            .map(|k| &senders[(i + k) % senders.len()])
            .find(|s| !s.busy.load(Ordering::Relaxed))
        else {
            shortfall.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        i += 1;
        s.busy.store(true, Ordering::Relaxed);
        let (s, rec, body, retries) = (s.clone(), rec.clone(), body.clone(), retries.clone());
        let n = s.next_seq.fetch_add(1, Ordering::Relaxed);
        bar.inc(1);
        tasks.push(tokio::spawn(async move {
            let cmid = format!("c{n}-{}", ulid::Ulid::generate());
            let key = (s.user.clone(), cmid.clone());
            let group = s.target["group"].as_str().map(str::to_owned);
            let mut frame = json!({"action": "send", "clientMsgId": cmid, "body": format!("{n} {body}")});
            for (k, v) in s.target.as_object().into_iter().flatten() {
                frame[k] = v.clone();
            }
            if group.is_none() {
                frame["seq"] = n.into();
            }
            rec.sent(
                key.clone(),
                SendRecord {
                    sender: s.user.clone(),
                    sent_at: Instant::now(),
                    acked_at: None,
                    message_ids: BTreeSet::new(),
                    seq: None,
                    client_seq: n,
                    retries: 0,
                    group,
                    expected: s.expected.clone(),
                },
            );
            // A client retries with the same clientMsgId until it gets an ack, on whatever connection it has now:
            // after no reply (the connection went away in churn, or the reply was lost) and after a retryable error.
            let mut backoff = Backoff::new(Duration::from_millis(300), Duration::from_millis(2400));
            loop {
                if let Some(reply) = s.client().request(frame.clone(), Duration::from_secs(10)).await {
                    if reply["type"] == "ack" {
                        let at = Instant::now();
                        rec.update(&key, |r| {
                            r.acked_at.get_or_insert(at);
                            r.message_ids.extend(reply["messageId"].as_str().map(str::to_owned));
                            r.seq = r.seq.or(reply["seq"].as_u64());
                        });
                        break;
                    }
                    if !matches!(
                        reply["code"].as_str(),
                        Some("unavailable" | "internal" | "rate_limited")
                    ) {
                        break;
                    }
                }
                if !backoff.wait().await {
                    break;
                }
                retries.fetch_add(1, Ordering::Relaxed);
                rec.update(&key, |r| r.retries += 1);
            }
            s.busy.store(false, Ordering::Relaxed);
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    stop.store(true, Ordering::Relaxed);
    let reconnects = match churner {
        Some(t) => t.await.map_err(|e| e.to_string())??,
        None => 0,
    };
    let online: Vec<Arc<Client>> = all.lock().unwrap_or_else(|e| e.into_inner()).clone();

    // Drain: wait for the pushes still on their way (fan-out and indexing run asynchronously).
    let drain_until = Instant::now() + Duration::from_secs(15);
    while rec.outstanding() > 0 && Instant::now() < drain_until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bar.finish_and_clear();
    if o.scenario == Scenario::Group {
        // The members ack once the group has been quiet for a moment: let those frames go out before counting
        // them (a short run's members each ack once more at its end, which a long one amortises).
        tokio::time::sleep(o.group_acks().quiet + Duration::from_millis(500)).await;
    }

    // Offline scenario: the partners come back and sync everything.
    let mut sync_times = Vec::new();
    let mut sync_frames = 0;
    if o.scenario == Scenario::Offline {
        // Sessions and the mailbox fill asynchronously; give the history consumer a moment.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let back: Vec<String> = returning.iter().map(|(_, away)| away.clone()).collect();
        for c in connect_all(&o, &back, &rec).await? {
            let t = Instant::now();
            sync_all(&c, &rec, false).await?;
            sync_times.push(t.elapsed().as_secs_f64() * 1000.0);
            sync_frames += c.frames_in.load(Ordering::Relaxed) + c.frames_out.load(Ordering::Relaxed);
        }
        // Here every acked message must come back in its recipient's sync.
        rec.expect_partners(&returning);
    }

    let (ack, delivery, guarantees) = rec.analyse(o.scenario != Scenario::Churn);
    let sends = rec.sends();
    let acked = sends.iter().filter(|s| s.acked_at.is_some()).count();
    let frames = count_frames(&online) - frames_at_start + sync_frames;
    let mut report = Report {
        label: o.label.clone(),
        options: o.clone(),
        sent: sends.len(),
        acked,
        failed: sends.len() - acked,
        retries: retries.load(Ordering::Relaxed),
        reconnects,
        rate_shortfall: shortfall.load(Ordering::Relaxed),
        delivered: rec.delivery_count(),
        send_to_ack_ms: ack,
        send_to_delivery_ms: delivery,
        sync_ms: (!sync_times.is_empty()).then(|| Percentiles::of(sync_times)),
        guarantees,
        usage: None,
        per_message: None,
        cost_per_million: None,
        calls_per_message: None,
        own_share: None,
        cpu_ms_per_message: None,
        websocket_frames: frames,
        changes: None,
    };

    if let (Some(url), Some(base)) = (&o.stats_url, setup_stats.or(before)) {
        // Let the last consumers (history, delayed presence events) finish before reading the counters.
        let after = quiesce(url, QUIET).await?;
        let usage = diff(&base, &after);
        let n = acked.max(1) as f64;
        let sqs_sends: u64 = usage
            .calls
            .iter()
            .filter(|(k, _)| k.starts_with("SQS."))
            .map(|(_, v)| v)
            .sum();
        let per = PerMessage {
            write_units: usage.model_write_units / n,
            read_units: usage.model_read_units / n,
            // Sends by the functions, plus a receive and a delete per consumer batch (Lambda's poller).
            sqs_requests: (sqs_sends + 2 * usage.consumer_batches) as f64 / n,
            lambda_invocations: usage.invocations as f64 / n,
            lambda_gb_seconds: usage.gb_seconds / n,
            websocket_messages: frames as f64 / n,
        };
        report.cost_per_million = Some(per_million(&per, &PRICES));
        report.calls_per_message = Some(usage.calls.iter().map(|(k, v)| (k.clone(), *v as f64 / n)).collect());
        report.own_share = (usage.metered_ms > 0.0).then(|| 1.0 - usage.aws_busy_ms / usage.metered_ms);
        report.cpu_ms_per_message = Some(usage.cpu_ms / n);
        report.per_message = Some(per);
        report.usage = Some(usage);
        if o.scenario == Scenario::Pairs {
            let work = crate::changes::pick(&online, &sends, 10);
            report.changes = Some(crate::changes::measure(url, QUIET, &work).await?);
        }
    }
    for c in &online {
        c.close();
    }
    Ok(report)
}
