//! natter-loadgen: drives many websocket users against natter (natter-local, or a deployed stage) and measures
//! what users and operators care about.
//!
//! - [`client`]: one user, as a client behaves (requests by requestId, records pushes, acks what it receives).
//! - [`run`]: the scenarios (pairs, group, offline then sync, churn) at a fixed rate, and the report.
//! - [`scenario`]: what a run is asked ([`scenario::Options`]) and what it reports ([`scenario::Report`]).
//! - [`record`]: every message's timeline; latency percentiles; the guarantees (loss, duplicates, order).
//! - [`stats`]: natter-local's AWS-call accounting before and after a run.
//! - [`cost`]: list prices and dollars per million messages.
//! - [`bench`]: `make bench`'s results rendered into docs/performance.md.
//! - [`markdown`]: the report as tables (docs/performance.md).

pub mod bench;
pub mod changes;
pub mod client;

pub mod cost;
pub mod markdown;
pub mod record;
pub mod run;
pub mod scenario;
pub mod stats;
