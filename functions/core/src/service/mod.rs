//! The rules. [`App`] holds the ports and the settings; each file adds the operations of one area.

mod ack;
mod connection;
mod delivery;
mod fanout;
mod friends;
mod group;
mod history;
mod limits;
mod presence;
mod pull;
mod send;

pub use delivery::DeliveryReport;
pub use pull::{REPLY_BUDGET, SYNC_CONVERSATIONS, SYNC_PAGE, cursors};
pub use send::Caller;

use crate::config::Settings;

/// The ports and settings the rules run with: `App<DynamoStore, ApiGatewayPusher, SqsQueue>` in the functions,
/// in-memory fakes in unit tests.
pub struct App<S, P, Q> {
    pub store: S,
    pub pusher: P,
    pub queue: Q,
    pub settings: Settings,
}

impl<S, P, Q> App<S, P, Q> {
    pub fn new(store: S, pusher: P, queue: Q, settings: Settings) -> Self {
        Self {
            store,
            pusher,
            queue,
            settings,
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod group_tests;

#[cfg(test)]
mod pull_tests;
