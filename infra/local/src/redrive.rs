//! Moving dead-lettered jobs back to the queue they came from, once the cause is fixed: what
//! `aws sqs start-message-move-task --source-arn <dead-letter queue ARN>` does on AWS, for natter-local
//! (`natter-local redrive QUEUE`, `POST /_natter/redrive/{QUEUE}`).

use crate::{stack::Stack, template::plain};
use serde::Serialize;

/// Which queues a redrive moves between.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    /// The dead-letter queue (logical id).
    pub from: String,
    /// The queue whose RedrivePolicy names it (logical id).
    pub to: String,
}

/// What a redrive did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Redriven {
    pub from: String,
    pub to: String,
    pub moved: usize,
}

/// Finds the route for `queue`, the logical id of either a dead-letter queue or the queue it serves.
pub fn route(stack: &Stack, queue: &str) -> Result<Route, String> {
    let queues = stack.queues().map_err(|e| e.to_string())?;
    let arn = |id: &str| stack.names.attrs.get(&(id.to_owned(), "Arn".to_owned())).map(plain);
    let dead_letter_of = |q: &crate::stack::QueueSpec| {
        q.properties["RedrivePolicy"]["deadLetterTargetArn"]
            .as_str()
            .map(str::to_owned)
    };
    for q in &queues {
        let Some(target) = dead_letter_of(q) else { continue };
        let dlq = queues
            .iter()
            .find(|d| arn(&d.logical_id).as_deref() == Some(target.as_str()));
        if let Some(dlq) = dlq
            && (q.logical_id == queue || dlq.logical_id == queue)
        {
            return Ok(Route {
                from: dlq.logical_id.clone(),
                to: q.logical_id.clone(),
            });
        }
    }
    let known: Vec<&str> = queues.iter().map(|q| q.logical_id.as_str()).collect();
    Err(format!(
        "`{queue}` is neither a queue with a dead-letter queue nor a dead-letter queue; queues: {}",
        known.join(", ")
    ))
}

/// Moves every message of `from_url` to `to_url`: each is sent to the target before it is deleted from the
/// dead-letter queue, so a failure half-way duplicates at most one batch (every consumer is idempotent), never
/// loses one.
pub async fn move_all(sqs: &aws_sdk_sqs::Client, from_url: &str, to_url: &str) -> Result<usize, String> {
    let mut moved = 0;
    loop {
        let got = sqs
            .receive_message()
            .queue_url(from_url)
            .max_number_of_messages(10)
            .visibility_timeout(30)
            .wait_time_seconds(0)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "receive from {from_url}: {}",
                    aws_sdk_sqs::error::DisplayErrorContext(e)
                )
            })?;
        let messages = got.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok(moved);
        }
        for m in messages {
            sqs.send_message()
                .queue_url(to_url)
                .message_body(m.body.unwrap_or_default())
                .send()
                .await
                .map_err(|e| format!("send to {to_url}: {}", aws_sdk_sqs::error::DisplayErrorContext(e)))?;
            if let Some(handle) = m.receipt_handle {
                sqs.delete_message()
                    .queue_url(from_url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .map_err(|e| format!("delete from {from_url}: {}", aws_sdk_sqs::error::DisplayErrorContext(e)))?;
            }
            moved += 1;
        }
    }
}

/// Every redrive route of a stack with its queue URLs, keyed by both queue names: what the control endpoint serves.
#[derive(Clone)]
pub struct Redriver {
    sqs: aws_sdk_sqs::Client,
    routes: std::collections::HashMap<String, (Route, String, String)>,
}

impl Redriver {
    pub fn new(stack: &Stack, sqs: aws_sdk_sqs::Client) -> Self {
        let mut routes = std::collections::HashMap::new();
        for q in stack.queues().unwrap_or_default() {
            if let Ok(r) = route(stack, &q.logical_id)
                && let (Some(from), Some(to)) = (stack.queue_url(&r.from), stack.queue_url(&r.to))
            {
                routes.insert(q.logical_id.clone(), (r, from, to));
            }
        }
        Self { sqs, routes }
    }

    /// Moves the dead-lettered messages of `queue` (either name of the pair) back to their queue.
    pub async fn redrive(&self, queue: &str) -> Result<Redriven, String> {
        let Some((r, from, to)) = self.routes.get(queue) else {
            let mut known: Vec<&str> = self.routes.keys().map(String::as_str).collect();
            known.sort();
            return Err(format!(
                "no dead-letter route for `{queue}`; known: {}",
                known.join(", ")
            ));
        };
        let moved = move_all(&self.sqs, from, to).await?;
        tracing::info!(from = %r.from, to = %r.to, moved, "redrove dead-lettered messages");
        Ok(Redriven {
            from: r.from.clone(),
            to: r.to.clone(),
            moved,
        })
    }

    /// `POST /_natter/redrive/{QUEUE}`: answers the [`Redriven`] as JSON, or 404 with the reason.
    pub fn control(self) -> axum::Router {
        async fn post(
            axum::extract::State(r): axum::extract::State<Redriver>,
            axum::extract::Path(queue): axum::extract::Path<String>,
        ) -> axum::response::Response {
            use axum::response::IntoResponse;
            match r.redrive(&queue).await {
                Ok(done) => axum::Json(done).into_response(),
                Err(e) => (axum::http::StatusCode::NOT_FOUND, e).into_response(),
            }
        }
        axum::Router::new()
            .route("/_natter/redrive/{queue}", axum::routing::post(post))
            .with_state(self)
    }
}
