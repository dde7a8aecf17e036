//! The rules. [`App`] holds the ports and the settings; each file adds the operations of one action (named as
//! the protocol names it: `send`, `ack`, `read`, `sync`, `history`, `friends`, `group`, ...) or of one consumer
//! (`index`, `fanout`, `presence`), on the ports it needs.

mod ack;
mod attach;
mod catch_up;
mod changes;
mod connection;
mod delivery;
mod devices;
mod fanout;
mod friends;
mod group;
mod history;
mod index;
mod invites;
mod limits;
mod notify;
mod presence;
mod read;
mod send;
mod settle;
mod sync;
mod typing;

pub use delivery::DeliveryReport;
pub use limits::rate_limited;
pub use send::Caller;
pub use sync::{REPLY_BUDGET, SYNC_CONVERSATIONS, SYNC_PAGE, cursors};

use crate::{config::Settings, meter::Meter};

/// The ports and settings the rules run with: `App<DynamoStore, ApiGatewayPusher, SqsQueue>` in the functions
/// (`aws::wiring`), the in-memory fakes of `testing` in unit tests. Handlers are generic over the ports, so the
/// same handler runs on either.
pub struct App<S, P, Q> {
    pub store: S,
    pub pusher: P,
    pub queue: Q,
    pub settings: Settings,
    /// The invocation's accounting (AWS calls, capacity), which the AWS clients feed.
    pub meter: Meter,
    /// Which typing `start`s this instance forwarded a moment ago (see `typing.rs`).
    pub typing_gate: typing::TypingGate,
    /// Which users this instance saw over their rate limit, and in which window (see `limits.rs`).
    pub over_limit: limits::OverLimit,
    /// Push notifications (SNS on AWS); only `device` and the notify consumer use it.
    pub notifier: std::sync::Arc<dyn crate::notify::Notifier>,
    /// Attachment storage (S3 on AWS); only `attach`, `send` and the functions that show messages use it.
    pub objects: std::sync::Arc<dyn crate::attachments::ObjectStore>,
}

impl<S, P, Q> App<S, P, Q> {
    pub fn new(store: S, pusher: P, queue: Q, settings: Settings) -> Self {
        Self {
            store,
            pusher,
            queue,
            settings,
            meter: Meter::default(),
            typing_gate: Default::default(),
            over_limit: Default::default(),
            notifier: std::sync::Arc::new(crate::notify::NoNotifier),
            objects: std::sync::Arc::new(crate::attachments::NoObjects),
        }
    }

    pub fn with_objects(mut self, objects: std::sync::Arc<dyn crate::attachments::ObjectStore>) -> Self {
        self.objects = objects;
        self
    }

    pub fn with_notifier(mut self, notifier: std::sync::Arc<dyn crate::notify::Notifier>) -> Self {
        self.notifier = notifier;
        self
    }

    pub fn with_meter(mut self, meter: Meter) -> Self {
        self.meter = meter;
        self
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod group_tests;

#[cfg(test)]
mod sync_tests;

#[cfg(test)]
mod friends_tests;

#[cfg(test)]
mod invites_tests;

#[cfg(test)]
mod changes_tests;

#[cfg(test)]
mod notify_tests;

#[cfg(test)]
mod attach_tests;
