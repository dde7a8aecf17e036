//! One websocket user as a real client behaves: it sends frames, matches replies by `requestId`, records every
//! message pushed to it, and acknowledges what it received: one-on-one messages by id within 100 ms, groups with one
//! batched `upToSeq` once the group has been quiet for a moment, and at least every so often while it is busy
//! ([`GroupAcks`], as docs/protocol.md recommends).

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
    groups: BTreeMap<String, PendingGroupAck>,
}

/// When a client acknowledges a group: after `quiet` without a new message in it, or once its oldest
/// unacknowledged message is `max` old while messages keep coming. A group ack only moves the member's mark (where
/// its next sync starts; no receipt goes to anyone), so in a busy group one ack per `max` is enough, and each one is
/// a billed frame, an invocation and a write.
#[derive(Debug, Clone, Copy)]
pub struct GroupAcks {
    pub quiet: Duration,
    pub max: Duration,
}

/// The highest sequence received in a group and not yet acknowledged.
struct PendingGroupAck {
    seq: u64,
    since: Instant,
    last: Instant,
}

impl PendingGroupAck {
    fn due(&self, rule: &GroupAcks, now: Instant) -> bool {
        now - self.last >= rule.quiet || now - self.since >= rule.max
    }
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
    /// Connects `user`, which acknowledges what it receives, as clients do: one-on-one messages
    /// within 100 ms, groups batched (`upToSeq`) by the [`GroupAcks`] rule.
    pub async fn connect(
        url: &str,
        user: &str,
        token: &str,
        recorder: Arc<Recorder>,
        group_acks: GroupAcks,
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
                            let now = Instant::now();
                            let e = a.groups.entry(g.to_owned()).or_insert(PendingGroupAck {
                                seq,
                                since: now,
                                last: now,
                            });
                            e.seq = e.seq.max(seq);
                            e.last = now;
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
        let (ack_out, ack_state) = (out.clone(), acks);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tick.tick().await;
                let frames: Vec<Value> = {
                    let mut a = lock(&ack_state);
                    let mut f = Vec::new();
                    for chunk in std::mem::take(&mut a.direct).chunks(100) {
                        f.push(json!({"action": "ack", "messageIds": chunk}));
                    }
                    let now = Instant::now();
                    a.groups.retain(|g, p| {
                        let due = p.due(&group_acks, now);
                        if due {
                            f.push(json!({"action": "ack", "group": g, "upToSeq": p.seq}));
                        }
                        !due
                    });
                    f
                };
                for f in frames {
                    if ack_out.send(Out::Frame(Message::Text(f.to_string().into()))).is_err() {
                        return;
                    }
                }
            }
        });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_ack_waits_for_quiet_but_never_longer_than_the_max() {
        let rule = GroupAcks {
            quiet: Duration::from_secs(2),
            max: Duration::from_secs(30),
        };
        let t0 = Instant::now();
        let mut p = PendingGroupAck {
            seq: 1,
            since: t0,
            last: t0,
        };
        assert!(
            !p.due(&rule, t0 + Duration::from_millis(1999)),
            "not before the group is quiet"
        );
        assert!(
            p.due(&rule, t0 + Duration::from_secs(2)),
            "once it has been quiet for 2 s"
        );
        // A message every second keeps the group busy: no ack until the oldest unacked one is 30 s old.
        for s in 1..30 {
            p.last = t0 + Duration::from_secs(s);
            assert!(!p.due(&rule, p.last + Duration::from_millis(999)), "busy at {s} s");
        }
        p.last = t0 + Duration::from_secs(30);
        assert!(
            p.due(&rule, t0 + Duration::from_secs(30)),
            "at most 30 s behind while busy"
        );
    }
}
