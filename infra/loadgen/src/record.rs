//! What happened to every message: when it was sent, acked and delivered to whom; and the guarantees checked on it.

use serde::Serialize;
use serde_json::Value;
use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Mutex,
    time::Instant,
};

/// One send, with its retries.
#[derive(Debug, Clone)]
pub struct SendRecord {
    pub sender: String,
    pub sent_at: Instant,
    pub acked_at: Option<Instant>,
    /// Every messageId the server answered with for this clientMsgId (more than one is a duplicate).
    pub message_ids: BTreeSet<String>,
    pub seq: Option<u64>,
    /// The sender's own running number.
    pub client_seq: u64,
    pub retries: u32,
    pub group: Option<String>,
    /// Who should get it pushed (online at send time).
    pub expected: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Delivery {
    pub recipient: String,
    pub message_id: String,
    pub from: String,
    pub client_msg_id: String,
    pub seq: Option<u64>,
    pub group: Option<String>,
    pub at: Instant,
}

#[derive(Default)]
struct Inner {
    sends: BTreeMap<(String, String), SendRecord>,
    deliveries: Vec<Delivery>,
}

#[derive(Default)]
pub struct Recorder {
    inner: Mutex<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct Percentiles {
    pub count: usize,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl Percentiles {
    pub fn of(mut v: Vec<f64>) -> Self {
        if v.is_empty() {
            return Self::default();
        }
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1];
        Self {
            count: v.len(),
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
            max: v[v.len() - 1],
            mean: v.iter().sum::<f64>() / v.len() as f64,
        }
    }
}

/// The guarantees of the protocol, as counts that must be zero (repeats and out-of-order arrivals are allowed:
/// clients drop repeats by messageId and order group messages by seq).
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct Guarantees {
    /// Acked messages an online recipient never got (or an offline one never found in sync).
    pub loss: usize,
    /// clientMsgIds that became more than one message.
    pub duplicates: usize,
    /// Pushes that came again with a messageId already received (allowed after failures).
    pub repeats: usize,
    /// One-on-one: a sender's messages out of the order they were sent, in the server's order (messageId, which
    /// history and sync follow) or, with every recipient online throughout, in the order they arrived.
    pub order_violations: usize,
    /// Groups: sequence numbers missing or taken twice among the acked messages.
    pub seq_gaps: usize,
    /// Messages arriving before an earlier one of the same conversation: group messages before a lower seq, and
    /// with reconnects a pushed message before an older one its recipient then syncs (clients order by seq and
    /// timestamp; informational).
    pub out_of_seq_arrivals: usize,
    /// Messages received that no sender sent.
    pub unexpected: usize,
    /// The first lost messages, as `recipient:messageId`, to look up when `loss` is not 0.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lost: Vec<String>,
}

impl Recorder {
    pub fn sent(&self, key: (String, String), record: SendRecord) {
        lock(&self.inner).sends.insert(key, record);
    }

    pub fn update(&self, key: &(String, String), f: impl FnOnce(&mut SendRecord)) {
        if let Some(r) = lock(&self.inner).sends.get_mut(key) {
            f(r);
        }
    }

    pub fn delivered(&self, recipient: &str, v: &Value, at: Instant) {
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
        lock(&self.inner).deliveries.push(Delivery {
            recipient: recipient.to_owned(),
            message_id: s("messageId"),
            from: s("from"),
            client_msg_id: s("clientMsgId"),
            seq: v["seq"].as_u64(),
            group: v["group"].as_str().map(str::to_owned),
            at,
        });
    }

    /// Delivered messages of `recipient` so far (for the offline scenario's sync results too).
    pub fn add_synced(&self, recipient: &str, messages: &[Value], at: Instant) {
        for m in messages {
            self.delivered(recipient, m, at);
        }
    }

    /// Offline scenario: each sender's messages are expected by its partner (who gets them through sync).
    pub fn expect_partners(&self, pairs: &[(String, String)]) {
        let partner: HashMap<&str, &str> = pairs.iter().map(|(s, r)| (s.as_str(), r.as_str())).collect();
        for s in lock(&self.inner).sends.values_mut() {
            if let Some(r) = partner.get(s.sender.as_str()) {
                s.expected = vec![r.to_string()];
            }
        }
    }

    pub fn sends(&self) -> Vec<SendRecord> {
        lock(&self.inner).sends.values().cloned().collect()
    }

    pub fn delivery_count(&self) -> usize {
        lock(&self.inner).deliveries.len()
    }

    /// How many expected pushes have arrived (for waiting until the run drains).
    pub fn outstanding(&self) -> usize {
        let inner = lock(&self.inner);
        let got: BTreeSet<(&str, &str)> = inner
            .deliveries
            .iter()
            .map(|d| (d.recipient.as_str(), d.message_id.as_str()))
            .collect();
        inner
            .sends
            .values()
            .filter(|s| s.acked_at.is_some())
            .flat_map(|s| {
                s.expected
                    .iter()
                    .flat_map(move |r| s.message_ids.iter().map(move |id| (r.as_str(), id.as_str())))
            })
            .filter(|k| !got.contains(k))
            .count()
    }

    /// Latencies and guarantees over everything recorded. `strict_arrival`: recipients stayed online, so a
    /// sender's one-on-one messages must also arrive in order (with reconnects, a push may overtake a sync).
    pub fn analyse(&self, strict_arrival: bool) -> (Percentiles, Percentiles, Guarantees) {
        let inner = lock(&self.inner);
        let mut g = Guarantees::default();
        let mut ack = Vec::new();
        let mut delivery = Vec::new();
        // First arrival of each (recipient, messageId).
        let mut first: HashMap<(&str, &str), &Delivery> = HashMap::new();
        for d in &inner.deliveries {
            if first.contains_key(&(d.recipient.as_str(), d.message_id.as_str())) {
                g.repeats += 1;
            } else {
                first.insert((&d.recipient, &d.message_id), d);
            }
        }
        let mut by_id: HashMap<&str, &SendRecord> = HashMap::new();
        for s in inner.sends.values() {
            if s.message_ids.len() > 1 {
                g.duplicates += s.message_ids.len() - 1;
            }
            for id in &s.message_ids {
                by_id.insert(id, s);
            }
            let Some(acked) = s.acked_at else { continue };
            ack.push(acked.duration_since(s.sent_at).as_secs_f64() * 1000.0);
            for r in &s.expected {
                match s
                    .message_ids
                    .iter()
                    .find_map(|id| first.get(&(r.as_str(), id.as_str())))
                {
                    Some(d) => delivery.push(d.at.saturating_duration_since(s.sent_at).as_secs_f64() * 1000.0),
                    None => {
                        g.loss += 1;
                        if g.lost.len() < 20 {
                            g.lost.push(format!(
                                "{r}:{}",
                                s.message_ids.iter().next().cloned().unwrap_or_default()
                            ));
                        }
                    }
                }
            }
        }
        g.unexpected = first.keys().filter(|(_, id)| !by_id.contains_key(id)).count();
        // Order: per (recipient, sender) in arrival order, one-on-one client sequence numbers must rise.
        let mut last: HashMap<(&str, &str), u64> = HashMap::new();
        let mut last_seq: HashMap<(&str, &str), u64> = HashMap::new();
        // Deliveries are recorded in arrival order (a sync page shares one instant, so the position is what counts).
        let arrivals = inner.deliveries.iter().filter(|d| {
            first
                .get(&(d.recipient.as_str(), d.message_id.as_str()))
                .is_some_and(|f| std::ptr::eq(*f, *d))
        });
        for d in arrivals {
            let Some(s) = by_id.get(d.message_id.as_str()) else {
                continue;
            };
            if d.group.is_none() {
                let prev = last.insert((&d.recipient, &s.sender), s.client_seq);
                if prev.is_some_and(|p| p > s.client_seq) {
                    if strict_arrival {
                        g.order_violations += 1;
                    } else {
                        g.out_of_seq_arrivals += 1;
                    }
                }
            } else if let (Some(seq), Some(group)) = (d.seq, d.group.as_deref()) {
                let prev = last_seq.insert((&d.recipient, group), seq);
                if prev.is_some_and(|p| p > seq) {
                    g.out_of_seq_arrivals += 1;
                }
            }
        }
        // Groups: the acked sequence numbers are 1..n without gaps or repeats, rising per sender.
        let mut groups: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
        let mut per_sender: BTreeMap<(&str, &str), Vec<(u64, u64)>> = BTreeMap::new();
        for s in inner.sends.values().filter(|s| s.acked_at.is_some()) {
            if let (Some(group), Some(seq)) = (s.group.as_deref(), s.seq) {
                groups.entry(group).or_default().push(seq);
                per_sender
                    .entry((group, &s.sender))
                    .or_default()
                    .push((s.client_seq, seq));
            }
        }
        for seqs in groups.values_mut() {
            seqs.sort();
            let distinct: BTreeSet<&u64> = seqs.iter().collect();
            let span = seqs.last().copied().unwrap_or(0) - seqs.first().copied().unwrap_or(1) + 1;
            g.seq_gaps += (seqs.len() - distinct.len()) + (span as usize).saturating_sub(distinct.len());
        }
        for list in per_sender.values_mut() {
            list.sort();
            g.order_violations += list.windows(2).filter(|w| w[0].1 > w[1].1).count();
        }
        // One-on-one: in the server's order (messageIds are ULIDs: time, then random) a sender's messages keep
        // the order they were sent in (each sender waits for its ack before the next message).
        let mut server_order: BTreeMap<(&str, &str), Vec<(&str, u64)>> = BTreeMap::new();
        for s in inner
            .sends
            .values()
            .filter(|s| s.acked_at.is_some() && s.group.is_none())
        {
            for (r, id) in s
                .expected
                .iter()
                .flat_map(|r| s.message_ids.iter().map(move |id| (r, id)))
            {
                server_order
                    .entry((r.as_str(), s.sender.as_str()))
                    .or_default()
                    .push((id.as_str(), s.client_seq));
            }
        }
        for list in server_order.values_mut() {
            list.sort();
            g.order_violations += list.windows(2).filter(|w| w[0].1 > w[1].1).count();
        }
        (Percentiles::of(ack), Percentiles::of(delivery), g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn send(r: &Recorder, sender: &str, cmid: &str, id: &str, n: u64, expected: &[&str]) {
        let now = Instant::now();
        r.sent(
            (sender.into(), cmid.into()),
            SendRecord {
                sender: sender.into(),
                sent_at: now,
                acked_at: Some(now),
                message_ids: [id.to_owned()].into(),
                seq: None,
                client_seq: n,
                retries: 0,
                group: None,
                expected: expected.iter().map(|s| s.to_string()).collect(),
            },
        );
    }

    #[test]
    fn loss_repeats_order_and_duplicates_are_counted() {
        let r = Recorder::default();
        send(&r, "a", "c1", "m1", 1, &["b"]);
        send(&r, "a", "c2", "m2", 2, &["b"]);
        send(&r, "a", "c3", "m3", 3, &["b"]);
        let push = |id: &str| json!({"type": "message", "messageId": id, "from": "a", "to": "b"});
        r.delivered("b", &push("m2"), Instant::now());
        r.delivered("b", &push("m1"), Instant::now());
        r.delivered("b", &push("m1"), Instant::now());
        r.update(&("a".into(), "c3".into()), |s| {
            s.message_ids.insert("m9".into());
        });
        let (ack, delivery, g) = r.analyse(true);
        assert_eq!((ack.count, delivery.count), (3, 2));
        assert_eq!((g.loss, g.repeats, g.order_violations, g.duplicates), (1, 1, 1, 1));
    }

    #[test]
    fn with_reconnects_a_push_may_overtake_a_sync_but_the_server_order_must_hold() {
        let r = Recorder::default();
        send(&r, "a", "c1", "m1", 1, &["b"]);
        send(&r, "a", "c2", "m2", 2, &["b"]);
        let push = |id: &str| json!({"type": "message", "messageId": id, "from": "a", "to": "b"});
        // b was away: m2 is pushed to its new connection before its sync brings m1.
        r.delivered("b", &push("m2"), Instant::now());
        r.add_synced("b", &[push("m1")], Instant::now());
        let (_, _, g) = r.analyse(false);
        assert_eq!((g.loss, g.order_violations, g.out_of_seq_arrivals), (0, 0, 1));
        assert_eq!(
            r.analyse(true).2.order_violations,
            1,
            "online throughout, that is out of order"
        );
        // The server ordering a later message first is a violation either way.
        send(&r, "a", "c3", "m0", 3, &["b"]);
        r.delivered("b", &push("m0"), Instant::now());
        assert_eq!(r.analyse(false).2.order_violations, 1);
    }

    #[test]
    fn percentiles_of_known_values() {
        let p = Percentiles::of((1..=100).map(f64::from).collect());
        assert_eq!((p.p50, p.p95, p.p99, p.max), (50.0, 95.0, 99.0, 100.0));
    }
}
