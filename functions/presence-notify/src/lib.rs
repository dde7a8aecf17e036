//! SQS consumer of delayed notices. Presence events: the queue delays each (`PresenceDelaySeconds`); the consumer
//! re-reads the user's presence and pushes `presence` to the user's online friends only if the status differs from
//! the one last pushed, so a connection that flaps inside the delay pushes nothing. Notifications: a message for a
//! user with no live connection, delayed by the NotifyQueue, becomes a push notification on the user's devices if
//! the user is still away, coalesced per conversation and minute (`service/notify.rs`).

use natter_core::{
    jobs::{NotifyJob, PresenceJob},
    lambda::{self, LambdaEvent, SqsBatchResponse, SqsEvent},
    now_ms,
    ports::{JobQueue, Pusher, Store},
    service::App,
};
use serde::Deserialize;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

const CONCURRENCY: usize = 10;

/// The two queues' jobs (their fields differ, so each record reads as what it is).
#[derive(Deserialize)]
#[serde(untagged)]
enum NoticeJob {
    Presence(PresenceJob),
    Notify(NotifyJob),
}

pub async fn handle<S: Store, P: Pusher, Q: JobQueue>(
    app: &App<S, P, Q>,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error> {
    Ok(
        lambda::process_batch(&app.meter, event.payload, CONCURRENCY, |job: NoticeJob| async move {
            match job {
                NoticeJob::Presence(j) => app.notify_presence(&j, now_ms()).await,
                NoticeJob::Notify(j) => app.notify(&j, now_ms()).await,
            }
        })
        .await,
    )
}
