//! Glue between Lambda events and the rules, shared by every function so that handlers stay thin.

use crate::{
    error::{BackendError, Failure},
    frames::{self, ErrorCode, RateCount, Reply, Request, ServerFrame},
    ids::{ClientMsgId, ConnectionId, UserId},
    meter::Meter,
    ports::FrameCounter,
    service::{App, Caller},
};
use futures::{StreamExt, stream};
use serde::de::DeserializeOwned;
use std::future::Future;
use tracing::{error, warn};

pub use lambda_runtime::{self, Context, LambdaEvent};

pub use aws_lambda_events::{
    apigw::{
        ApiGatewayCustomAuthorizerPolicy, ApiGatewayCustomAuthorizerRequestTypeRequest,
        ApiGatewayCustomAuthorizerResponse, ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest,
    },
    encodings::Body,
    iam::{IamPolicyEffect, IamPolicyStatement},
    sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage},
};

/// The key of the authorizer context that carries the user id to every route.
pub const USER_ID_KEY: &str = "userId";

/// The user id the authorizer attached to the connection, if any.
pub fn authorized_user(event: &ApiGatewayWebsocketProxyRequest) -> Option<UserId> {
    let fields = &event.request_context.authorizer.fields;
    fields
        .get(USER_ID_KEY)
        .or_else(|| fields.get("principalId"))
        .and_then(|v| v.as_str())
        .and_then(|s| UserId::parse(s).ok())
}

/// The connection a WebSocket event came on.
pub fn connection_id(event: &ApiGatewayWebsocketProxyRequest) -> Option<ConnectionId> {
    event
        .request_context
        .connection_id
        .as_deref()
        .and_then(|c| ConnectionId::parse(c).ok())
}

/// The caller of a frame route: the authorizer's user on this connection.
pub fn caller(event: &ApiGatewayWebsocketProxyRequest) -> Option<Caller> {
    Some(Caller {
        user: authorized_user(event)?,
        connection: connection_id(event)?,
    })
}

/// When API Gateway received the frame (ms), which decides its rate-limit window; now if the event lacks it.
pub fn arrived_ms(event: &ApiGatewayWebsocketProxyRequest) -> i64 {
    match event.request_context.request_time_epoch {
        t if t > 0 => t,
        _ => crate::now_ms(),
    }
}

/// A route response. API Gateway sends `body` back to the client on routes that have a route response.
pub fn response(body: Option<String>) -> ApiGatewayProxyResponse {
    let mut r = ApiGatewayProxyResponse::default();
    r.status_code = 200;
    r.body = body.map(Into::into);
    r
}

/// A direct reply through the route response.
pub fn reply(reply: &Reply) -> ApiGatewayProxyResponse {
    response(Some(reply.to_json()))
}

/// What a frame route answers.
// One per invocation, moved once: boxing the frame would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Answer {
    /// A direct reply.
    Frame(ServerFrame),
    /// Nothing to say: `{"type":"ok"}` if the frame carried a requestId, else no reply at all.
    Done,
}

/// A frame reached a function that does not serve its action: the API's routes and functions disagree.
pub fn misrouted(action: &str) -> Failure {
    Failure::Backend(BackendError::corrupt(
        "route",
        format!("action `{action}` reached a function that does not serve it"),
    ))
}

/// Runs a frame route: identifies the caller, counts the frame against the connection's rate limit, parses it,
/// runs `handle`, and turns every outcome into the reply the protocol promises. Never fails: a client's mistake,
/// a frame over the limit or a backend failure is an error frame.
pub async fn frame_route<S, P, Q, F, Fut>(
    app: &App<S, P, Q>,
    event: &ApiGatewayWebsocketProxyRequest,
    handle: F,
) -> ApiGatewayProxyResponse
where
    S: FrameCounter,
    F: FnOnce(Caller, Request) -> Fut,
    Fut: Future<Output = Result<Answer, Failure>>,
{
    let started = app.meter.begin();
    let route = event.request_context.route_key.clone().unwrap_or_default();
    let response = frame_route_inner(app, event, handle).await;
    app.meter.finish(started, &route, 1);
    response
}

async fn frame_route_inner<S, P, Q, F, Fut>(
    app: &App<S, P, Q>,
    event: &ApiGatewayWebsocketProxyRequest,
    handle: F,
) -> ApiGatewayProxyResponse
where
    S: FrameCounter,
    F: FnOnce(Caller, Request) -> Fut,
    Fut: Future<Output = Result<Answer, Failure>>,
{
    let Some(caller) = caller(event) else {
        // API Gateway only invokes routes for authorized connections: this is a wiring fault, not the client's.
        error!("event without a connection id or authorizer user id");
        return reply(&ServerFrame::error(ErrorCode::Internal, "internal error").reply_to(None));
    };
    let parsed = frames::parse(event.body.as_deref().unwrap_or_default());
    let (request_id, client_msg_id) = match &parsed {
        Ok(r) => (
            r.request_id.clone(),
            match &r.frame {
                frames::ClientFrame::Send(s) => Some(s.client_msg_id.clone()),
                _ => None,
            },
        ),
        Err(_) => (None, None),
    };
    // Every frame counts, malformed ones too, when its kind says so (`ClientFrame::rate_count`); the window is that
    // of the frame's arrival at API Gateway.
    let arrived = arrived_ms(event);
    let counted_first = match &parsed {
        Ok(r) => match r.frame.rate_count() {
            RateCount::Before => true,
            RateCount::InItsFirstStep | RateCount::Never => false,
            // Counted after their work (`App::pay_unless_moved`); an instance that already saw the user over the
            // limit still refuses them without a call.
            RateCount::ByProgress => app.known_over_limit(&caller.user, arrived),
        },
        Err(_) => true,
    };
    if counted_first && !app.admit(&caller.user, arrived).await {
        warn!(connection = %caller.connection, "frame over the user's rate limit");
        let refusal = crate::service::rate_limited(&app.settings);
        return failure_reply(&app.meter, &refusal, client_msg_id, request_id);
    }
    let request = match parsed {
        Ok(r) => r,
        Err(refusal) => {
            app.meter.count_error_frame(refusal.code.as_str());
            return reply(&refusal.into_reply());
        }
    };
    let action = request.frame.action();
    app.meter.set_kind(request.frame.kind());
    // Boxed: a route's future nests every SDK call it makes; kept inline it makes the runtime's task type too deep
    // for the compiler and large for the stack. One allocation per invocation.
    match Box::pin(handle(caller, request)).await {
        Ok(Answer::Frame(frame)) => reply(&frame.reply_to(request_id)),
        Ok(Answer::Done) => match request_id {
            Some(id) => reply(&ServerFrame::Ok.reply_to(Some(id))),
            None => response(None),
        },
        Err(failure) => {
            match &failure {
                Failure::Backend(e) => {
                    error!(error = %e, source = ?std::error::Error::source(e), action, "backend failure")
                }
                Failure::Rejected(r) => warn!(reason = %r, action, "refused"),
            }
            failure_reply(&app.meter, &failure, client_msg_id, request_id)
        }
    }
}

/// The error frame a failure answers (with the send's `clientMsgId`, if any), counted by its code.
fn failure_reply(
    meter: &Meter,
    failure: &Failure,
    client_msg_id: Option<ClientMsgId>,
    request_id: Option<frames::RequestId>,
) -> ApiGatewayProxyResponse {
    meter.count_error_frame(failure.code().as_str());
    let frame = ServerFrame::Error(frames::ErrorReply {
        code: failure.code(),
        message: failure.client_message(),
        client_msg_id,
    });
    reply(&frame.reply_to(request_id))
}

/// Processes an SQS batch record by record, concurrently (bounded), and reports the records that failed so that
/// only they are retried (ReportBatchItemFailures). A record that cannot be parsed fails on its own and reaches the
/// DLQ after maxReceiveCount; it never fails the batch.
pub async fn process_batch<J, F, Fut>(meter: &Meter, event: SqsEvent, concurrency: usize, work: F) -> SqsBatchResponse
where
    J: DeserializeOwned,
    F: Fn(J) -> Fut,
    Fut: Future<Output = Result<(), BackendError>>,
{
    process_batch_by_key(meter, event, concurrency, |_: &J| (String::new(), 0), work).await
}

/// As [`process_batch`], but records with the same key run one after the other (jobs that write the same item
/// would only contend), ordered by the second part of the key (SQS does not keep order; equal values keep the
/// batch's order); records of different keys run concurrently. The empty key means no lane at all.
pub async fn process_batch_by_key<J, K, F, Fut>(
    meter: &Meter,
    event: SqsEvent,
    concurrency: usize,
    key: K,
    work: F,
) -> SqsBatchResponse
where
    J: DeserializeOwned,
    K: Fn(&J) -> (String, i64),
    F: Fn(J) -> Fut,
    Fut: Future<Output = Result<(), BackendError>>,
{
    // Parse first: a malformed record fails alone.
    let records = event
        .records
        .into_iter()
        .map(|record| {
            let id = record.message_id.clone().unwrap_or_default();
            let job = match record.body.as_deref().map(serde_json::from_str::<J>) {
                Some(Ok(job)) => Ok(Some(job)),
                Some(Err(e)) => Err(format!("malformed job: {e}")),
                None => Err("job without a body".to_owned()),
            };
            (id, job)
        })
        .collect();
    process_records_by_key(meter, records, concurrency, key, work).await
}

/// The lanes of [`process_batch_by_key`] over records already parsed, each with the identifier Lambda expects
/// back for a failure (an SQS message id, a stream record's sequence number): `Ok(None)` is a record with nothing
/// to do, `Err` one that could not be parsed and fails alone.
pub async fn process_records_by_key<J, K, F, Fut>(
    meter: &Meter,
    records: Vec<(String, Result<Option<J>, String>)>,
    concurrency: usize,
    key: K,
    work: F,
) -> SqsBatchResponse
where
    K: Fn(&J) -> (String, i64),
    F: Fn(J) -> Fut,
    Fut: Future<Output = Result<(), BackendError>>,
{
    let started = meter.begin();
    let count = records.len();
    let kind = std::any::type_name::<J>()
        .rsplit("::")
        .next()
        .unwrap_or("job")
        .to_owned();
    let mut failed: Vec<String> = Vec::new();
    // Lanes by key; each job with its order in the lane and its record's identifier.
    type Lane<J> = (String, Vec<(i64, String, J)>);
    let mut lanes: Vec<Lane<J>> = Vec::new();
    for (id, job) in records {
        match job {
            Ok(Some(job)) => {
                let (k, order) = key(&job);
                match lanes.iter_mut().find(|(lane, _)| !k.is_empty() && *lane == k) {
                    Some((_, jobs)) => jobs.push((order, id, job)),
                    None => lanes.push((k, vec![(order, id, job)])),
                }
            }
            Ok(None) => {}
            Err(e) => {
                error!(record = %id, error = %e, "unusable record");
                failed.push(id);
            }
        }
    }
    let work = &work;
    let lane_failures: Vec<Vec<String>> = stream::iter(lanes)
        .map(|(_, mut jobs)| async move {
            jobs.sort_by_key(|(order, _, _)| *order);
            let mut lane_failed = Vec::new();
            for (_, id, job) in jobs {
                if let Err(e) = work(job).await {
                    error!(record = %id, error = %e, source = ?std::error::Error::source(&e), "job failed");
                    lane_failed.push(id);
                }
            }
            lane_failed
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    failed.extend(lane_failures.into_iter().flatten());
    meter.finish(started, &kind, count);
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .map(|id| {
            let mut f = BatchItemFailure::default();
            f.item_identifier = id;
            f
        })
        .collect();
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn event(bodies: &[&str]) -> SqsEvent {
        let mut e = SqsEvent::default();
        e.records = bodies
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let mut m = SqsMessage::default();
                m.message_id = Some(format!("m{i}"));
                m.body = Some((*b).to_owned());
                m
            })
            .collect();
        e
    }

    #[tokio::test]
    async fn records_of_one_key_run_in_order_and_failures_are_reported_alone() {
        let log = Mutex::new(Vec::new());
        let e = event(&[
            r#"["a",1]"#,
            r#"["b",2]"#,
            "oops",
            r#"["a",3]"#,
            r#"["a",2]"#,
            r#"["b",1]"#,
        ]);
        let r = process_batch_by_key(
            &Meter::default(),
            e,
            4,
            |j: &(String, u32)| (j.0.clone(), i64::from(j.1)),
            |j: (String, u32)| {
                let log = &log;
                async move {
                    // Later records of a key would overtake earlier ones if they ran concurrently.
                    tokio::time::sleep(std::time::Duration::from_millis(u64::from(10 - j.1 * 3))).await;
                    log.lock().unwrap().push(j.clone());
                    if j == ("a".to_owned(), 2) {
                        return Err(BackendError::Timeout("test"));
                    }
                    Ok(())
                }
            },
        )
        .await;
        let mut failed: Vec<String> = r.batch_item_failures.into_iter().map(|f| f.item_identifier).collect();
        failed.sort();
        assert_eq!(
            failed,
            ["m2", "m4"],
            "the malformed record and the failed one, nothing else"
        );
        let log = log.into_inner().unwrap();
        let order = |k: &str| log.iter().filter(|(x, _)| x == k).map(|(_, n)| *n).collect::<Vec<_>>();
        assert_eq!(order("a"), [1, 2, 3]);
        assert_eq!(order("b"), [1, 2]);
    }
}
