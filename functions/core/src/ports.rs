//! The small async traits the rules need. `aws` implements them with DynamoDB, SQS and the @connections API;
//! unit tests implement them in memory. Each trait is what one group of callers needs, no more.

use crate::{
    error::BackendError,
    ids::{ConnectionId, MessageId, UserId},
    jobs::{HistoryJob, Job},
    model::{Claim, ClaimKey, NewConnection, Presence, StoredMessage, Transition},
};
use std::{collections::HashMap, future::Future};

pub type Res<T> = Result<T, BackendError>;

/// Users: registration and lookup.
pub trait Directory: Send + Sync {
    /// Registers the user on first sight (joined_at); later calls change nothing.
    fn register(&self, user: &UserId, now: i64) -> impl Future<Output = Res<()>> + Send;

    /// The users among `users` that exist, each with its presence (empty if it has none): one read for
    /// "does the recipient exist" and "where are the participants connected".
    fn lookup(&self, users: &[UserId]) -> impl Future<Output = Res<HashMap<UserId, Presence>>> + Send;
}

/// Connections and presence.
pub trait PresenceStore: Send + Sync {
    /// Records a connection (registry item with TTL) and adds it to the user's presence.
    fn open(&self, connection: &NewConnection) -> impl Future<Output = Res<Transition>> + Send;

    /// Removes a connection from the registry and the user's presence, recording last_seen.
    fn close(&self, user: &UserId, connection: &ConnectionId, now: i64)
    -> impl Future<Output = Res<Transition>> + Send;

    /// Presence of the given users; users without a presence item are left out.
    fn presence(&self, users: &[UserId]) -> impl Future<Output = Res<HashMap<UserId, Presence>>> + Send;
}

/// Idempotency claims and messages.
pub trait MessageStore: Send + Sync {
    /// Claims `key` for `fresh` unless it is claimed already. `None`: this attempt won; `Some`: the existing claim.
    fn claim(&self, key: &ClaimKey, fresh: &Claim, expires_at: i64) -> impl Future<Output = Res<Option<Claim>>> + Send;

    /// The current claim, read consistently.
    fn read_claim(&self, key: &ClaimKey) -> impl Future<Output = Res<Option<Claim>>> + Send;

    /// Takes over an unfinished claim whose lease ran out, if nobody changed it since `seen`.
    fn take_over(&self, key: &ClaimKey, seen: &Claim, lease_until: i64) -> impl Future<Output = Res<bool>> + Send;

    /// Ends this attempt's lease early so a retry can resume at once (after a failure).
    fn release(&self, key: &ClaimKey, lease_until: i64) -> impl Future<Output = Res<()>> + Send;

    /// Marks the send complete: retries only get the ack from now on.
    fn finish(&self, key: &ClaimKey) -> impl Future<Output = Res<()>> + Send;

    /// Drops a claim that led to no message (the send was refused).
    fn forget(&self, key: &ClaimKey, claim: &Claim) -> impl Future<Output = Res<()>> + Send;

    /// Stores a message unless it exists; returns the existing one if it does (the first attempt wins).
    fn put_message(
        &self,
        message: &StoredMessage,
        expires_at: Option<i64>,
    ) -> impl Future<Output = Res<Option<StoredMessage>>> + Send;

    /// Marks one-on-one messages addressed to `acker` delivered and takes them out of its mailbox. Returns those
    /// that were addressed to `acker` (acked now or before); others are ignored.
    fn mark_delivered(
        &self,
        acker: &UserId,
        ids: &[MessageId],
        now: i64,
    ) -> impl Future<Output = Res<Vec<StoredMessage>>> + Send;
}

/// The history index and conversation sessions.
pub trait IndexStore: Send + Sync {
    /// Indexes a one-on-one message for both participants and updates both sessions, exactly once per message
    /// however often it is called: unread +1 for the recipient (unless it already read past the message), preview
    /// and time of the newest message for both.
    fn index_direct(&self, job: &HistoryJob, expires_at: Option<i64>) -> impl Future<Output = Res<()>> + Send;
}

/// The outcome of one post to a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Posted {
    Delivered,
    /// 410: the connection is gone; the caller removes it.
    Gone,
}

/// Posts frames to WebSocket connections (API Gateway's @connections API).
pub trait Pusher: Send + Sync {
    fn post(&self, connection: &ConnectionId, frame: &str) -> impl Future<Output = Res<Posted>> + Send;
}

/// Queues jobs for the asynchronous consumers.
pub trait JobQueue: Send + Sync {
    fn enqueue(&self, job: &Job) -> impl Future<Output = Res<()>> + Send;
}
