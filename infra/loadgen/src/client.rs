//! One websocket user as a real client behaves: it sends frames, matches replies by `requestId`, records every
//! message pushed to it, and acknowledges what it received (one-on-one messages by id within 100 ms, groups with a
//! batched `upToSeq` every 500 ms).

use crate::record::Recorder;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

#[derive(Default)]
struct Acks {
    direct: Vec<String>,
    groups: BTreeMap<String, u64>,
}

/// What the writer task does next.
enum Out {
    Frame(Message),
    /// Drops the TCP connection without a close frame, as a phone losing its network does.
    Vanish,
}

pub struct Client {
    pub user: String,
    out: mpsc::UnboundedSender<Out>,
    pending: Arc<Mutex<HashMap<String, oneshot::Sender<Value>>>>,
    next: AtomicU64,
    /// Frames this client sent and received (API Gateway bills both).
    pub frames_out: Arc<AtomicU64>,
    pub frames_in: Arc<AtomicU64>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Client {
    /// Connects `user`; with `group_acks` it acknowledges what it receives, as clients do: one-on-one messages
    /// within 100 ms, groups batched (`upToSeq`) once per `group_acks` window.
    pub async fn connect(
        url: &str,
        user: &str,
        token: &str,
        recorder: Arc<Recorder>,
        group_acks: Option<Duration>,
    ) -> Result<Arc<Client>, String> {
        let (ws, _) = tokio_tungstenite::connect_async(format!("{url}/?token={token}"))
            .await
            .map_err(|e| format!("{user}: {e}"))?;
        let (mut sink, mut stream) = ws.split();
        let (out, mut rx) = mpsc::unbounded_channel::<Out>();
        let frames_out = Arc::new(AtomicU64::new(0));
        let frames_in = Arc::new(AtomicU64::new(0));
        let counted = frames_out.clone();
        let gone = Arc::new(tokio::sync::Notify::new());
        let vanished = gone.clone();
        tokio::spawn(async move {
            // Vanish: the writer drops its half and tells the reader to drop the other, which closes the socket.
            while let Some(Out::Frame(m)) = rx.recv().await {
                let close = matches!(m, Message::Close(_));
                if !close {
                    counted.fetch_add(1, Ordering::Relaxed);
                }
                if sink.send(m).await.is_err() || close {
                    break;
                }
            }
            vanished.notify_one();
        });
        let pending: Arc<Mutex<HashMap<String, oneshot::Sender<Value>>>> = Arc::default();
        let acks: Arc<Mutex<Acks>> = Arc::default();
        let (reader_pending, reader_acks, reader_user, received) =
            (pending.clone(), acks.clone(), user.to_owned(), frames_in.clone());
        tokio::spawn(async move {
            loop {
                let frame = tokio::select! {
                    _ = gone.notified() => break,
                    f = stream.next() => f,
                };
                let Some(Ok(frame)) = frame else { break };
                let Message::Text(text) = frame else { continue };
                received.fetch_add(1, Ordering::Relaxed);
                let Ok(v) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                if v["type"] == "message" {
                    recorder.delivered(&reader_user, &v, Instant::now());
                    let mut a = lock(&reader_acks);
                    match (v["group"].as_str(), v["seq"].as_u64(), v["messageId"].as_str()) {
                        (Some(g), Some(seq), _) => {
                            let e = a.groups.entry(g.to_owned()).or_default();
                            *e = (*e).max(seq);
                        }
                        (None, _, Some(id)) => a.direct.push(id.to_owned()),
                        _ => {}
                    }
                    continue;
                }
                if let Some(id) = v["requestId"].as_str()
                    && let Some(tx) = lock(&reader_pending).remove(id)
                {
                    let _ = tx.send(v);
                }
            }
            // The connection is gone: requests still waiting get no reply (their senders retry elsewhere).
            lock(&reader_pending).clear();
        });
        if let Some(window) = group_acks {
            let group_rounds = (window.as_millis() / 100).max(1) as u64;
            let (ack_out, ack_state) = (out.clone(), acks);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(100));
                let mut round = 0u64;
                loop {
                    tick.tick().await;
                    round += 1;
                    let frames: Vec<Value> = {
                        let mut a = lock(&ack_state);
                        let mut f = Vec::new();
                        for chunk in std::mem::take(&mut a.direct).chunks(100) {
                            f.push(json!({"action": "ack", "messageIds": chunk}));
                        }
                        if round.is_multiple_of(group_rounds) {
                            for (g, seq) in std::mem::take(&mut a.groups) {
                                f.push(json!({"action": "ack", "group": g, "upToSeq": seq}));
                            }
                        }
                        f
                    };
                    for f in frames {
                        if ack_out.send(Out::Frame(Message::Text(f.to_string().into()))).is_err() {
                            return;
                        }
                    }
                }
            });
        }
        Ok(Arc::new(Client {
            user: user.to_owned(),
            out,
            pending,
            next: AtomicU64::new(0),
            frames_out,
            frames_in,
        }))
    }

    /// Sends `frame` with a fresh requestId and waits for the reply.
    pub async fn request(&self, mut frame: Value, wait: Duration) -> Option<Value> {
        let id = format!("{}-{}", self.user, self.next.fetch_add(1, Ordering::Relaxed));
        frame["requestId"] = id.clone().into();
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id.clone(), tx);
        if self
            .out
            .send(Out::Frame(Message::Text(frame.to_string().into())))
            .is_err()
        {
            lock(&self.pending).remove(&id);
            return None;
        }
        let reply = tokio::time::timeout(wait, rx).await.ok().and_then(Result::ok);
        lock(&self.pending).remove(&id);
        reply
    }

    /// Sends a frame without waiting for anything.
    pub fn send(&self, frame: &Value) {
        let _ = self.out.send(Out::Frame(Message::Text(frame.to_string().into())));
    }

    pub fn close(&self) {
        let _ = self.out.send(Out::Frame(Message::Close(None)));
    }

    /// Goes away without a close frame (API Gateway still runs `$disconnect` when the TCP connection drops).
    pub fn vanish(&self) {
        let _ = self.out.send(Out::Vanish);
    }
}
