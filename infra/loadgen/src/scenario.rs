//! What a run is asked to do ([`Options`], for one [`Scenario`]) and what it reports ([`Report`]).

use crate::{
    client::GroupAcks,
    cost::PerMessage,
    record::{Guarantees, Percentiles},
    stats::Usage,
};
use serde::Serialize;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// Users in pairs, all online, chatting one-on-one.
    Pairs,
    /// One group of `group_size` members, `online` of them connected and sending.
    Group,
    /// Senders write to partners who are offline; the partners then connect and sync.
    Offline,
    /// Pairs chatting while clients drop (with or without a close frame) and come back at random, then sync and
    /// acknowledge what they missed: the soak test.
    Churn,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Options {
    pub url: String,
    /// Signs tokens for the load's users; `None` with `tokens`.
    #[serde(skip, default)]
    pub secret: Option<String>,
    pub scenario: Scenario,
    /// Users (pairs, offline) or online members (group: see `online`).
    pub clients: usize,
    pub group_size: usize,
    pub online: usize,
    /// Messages per second, all senders together.
    pub rate: f64,
    pub duration_secs: f64,
    pub body_bytes: usize,
    /// A client acknowledges a group once it has been quiet this long (one `upToSeq` ack)...
    #[serde(default)]
    pub group_ack_ms: u64,
    /// ...or once its oldest unacknowledged message is this old while the group stays busy.
    #[serde(default = "default_group_ack_max_ms")]
    pub group_ack_max_ms: u64,
    /// Churn scenario: reconnects per second, all clients together.
    #[serde(default)]
    pub churn_per_sec: f64,
    /// natter-local's `/_natter/stats`, for AWS calls and cost.
    pub stats_url: Option<String>,
    pub label: String,
    pub progress: bool,
}

fn default_group_ack_max_ms() -> u64 {
    30_000
}

impl Options {
    pub(crate) fn group_acks(&self) -> GroupAcks {
        GroupAcks {
            quiet: Duration::from_millis(self.group_ack_ms),
            max: Duration::from_millis(self.group_ack_max_ms.max(self.group_ack_ms)),
        }
    }
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Report {
    pub label: String,
    pub options: Options,
    pub sent: usize,
    pub acked: usize,
    pub failed: usize,
    pub retries: u64,
    /// Churn scenario: how many times a client dropped and came back.
    #[serde(default)]
    pub reconnects: u64,
    /// Sends skipped because every sender still waited for its previous ack.
    pub rate_shortfall: u64,
    pub delivered: usize,
    pub send_to_ack_ms: Percentiles,
    pub send_to_delivery_ms: Percentiles,
    /// Offline scenario: how long the returning users' syncs took.
    pub sync_ms: Option<Percentiles>,
    pub guarantees: Guarantees,
    pub usage: Option<Usage>,
    pub per_message: Option<PerMessage>,
    /// Dollars per million messages at [`PRICES`].
    pub cost_per_million: Option<crate::cost::Cost>,
    /// AWS calls per message, by service and operation.
    pub calls_per_message: Option<std::collections::BTreeMap<String, f64>>,
    /// Share of the functions' time with no AWS call in flight: natter's own work.
    pub own_share: Option<f64>,
    /// CPU milliseconds of the function processes per message.
    pub cpu_ms_per_message: Option<f64>,
    pub websocket_frames: u64,
    /// Pairs scenario: a typing, edit, reaction and delete frame about one message per pair, measured apart.
    #[serde(default)]
    pub changes: Option<Usage>,
}
