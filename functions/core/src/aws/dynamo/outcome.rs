//! How a DynamoDB call ended, read one way everywhere.
//!
//! - A conditional single-item write ([`written`]) either applied or was refused by its condition, in which case
//!   the item as it was comes back when the request asked for it (`ReturnValuesOnConditionCheckFailure`).
//! - A transaction ([`committed`]) either committed or was cancelled, with one [`Reason`] per item in request
//!   order; `TransactionInProgressException` (another transaction held an item) reads as a conflict.
//! - Anything else is a [`BackendError`]: [`crate::aws::call_error`] decides whether a retry may succeed, and
//!   [`retryable`] names the failures natter itself decides are worth a retry (throttled batches, contention).

use super::Item;
use crate::{aws::call_error, error::BackendError, ports::Res};
use aws_sdk_dynamodb::operation::{
    delete_item::DeleteItemError, put_item::PutItemError, transact_write_items::TransactWriteItemsError,
    update_item::UpdateItemError,
};
use aws_smithy_runtime_api::client::{orchestrator::HttpResponse, result::SdkError};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// The errors of the single-item writes: each can say that the write's condition failed.
pub(super) trait ConditionalError: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static {
    /// `Some(old)` when the condition failed; `old` is the item as it was, if the request asked for it.
    fn condition_failed(&self) -> Option<Option<&Item>>;
}

impl ConditionalError for PutItemError {
    fn condition_failed(&self) -> Option<Option<&Item>> {
        match self {
            Self::ConditionalCheckFailedException(e) => Some(e.item()),
            _ => None,
        }
    }
}

impl ConditionalError for UpdateItemError {
    fn condition_failed(&self) -> Option<Option<&Item>> {
        match self {
            Self::ConditionalCheckFailedException(e) => Some(e.item()),
            _ => None,
        }
    }
}

impl ConditionalError for DeleteItemError {
    fn condition_failed(&self) -> Option<Option<&Item>> {
        match self {
            Self::ConditionalCheckFailedException(e) => Some(e.item()),
            _ => None,
        }
    }
}

/// How a conditional write ended.
pub(super) enum Written<O> {
    Applied(O),
    /// The condition failed; the item as it was, when the request asked for it (and there was one).
    Refused(Option<Item>),
}

/// Reads the result of a conditional write: a failed condition is an answer, not an error.
pub(super) fn written<O, E: ConditionalError>(
    operation: &'static str,
    r: Result<O, SdkError<E, HttpResponse>>,
) -> Res<Written<O>> {
    match r {
        Ok(out) => Ok(Written::Applied(out)),
        Err(e) => match e.as_service_error().and_then(ConditionalError::condition_failed) {
            Some(old) => Ok(Written::Refused(old.cloned())),
            None => Err(call_error("DynamoDB", operation, e)),
        },
    }
}

/// Whether a conditional write applied.
pub(super) fn applied<O, E: ConditionalError>(
    operation: &'static str,
    r: Result<O, SdkError<E, HttpResponse>>,
) -> Res<bool> {
    Ok(matches!(written(operation, r)?, Written::Applied(_)))
}

/// Why one item of a cancelled transaction stopped it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reason {
    /// This item was fine; another one cancelled the transaction.
    None,
    ConditionFailed,
    /// Another transaction or write held the item at that instant: the same request may go through later.
    Conflict,
    /// Throttling, validation and the rest.
    Other,
}

/// How a transaction ended.
pub(super) enum Committed {
    Yes,
    /// One reason per item, in the order of the request.
    Cancelled(Vec<Reason>),
}

impl Committed {
    /// Whether item `i` failed its condition.
    pub(super) fn failed_condition(&self, i: usize) -> bool {
        matches!(self, Self::Cancelled(r) if r.get(i) == Some(&Reason::ConditionFailed))
    }
}

/// Reads the result of `TransactWriteItems`: a cancellation is an answer, with its reasons.
pub(super) fn committed<O>(r: Result<O, SdkError<TransactWriteItemsError, HttpResponse>>) -> Res<Committed> {
    let e = match r {
        Ok(_) => return Ok(Committed::Yes),
        Err(e) => e,
    };
    match e.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(tc)) => Ok(Committed::Cancelled(
            tc.cancellation_reasons()
                .iter()
                .map(|r| match r.code() {
                    None | Some("None") => Reason::None,
                    Some("ConditionalCheckFailed") => Reason::ConditionFailed,
                    Some("TransactionConflict") => Reason::Conflict,
                    Some(_) => Reason::Other,
                })
                .collect(),
        )),
        Some(TransactWriteItemsError::TransactionInProgressException(_)) => {
            Ok(Committed::Cancelled(vec![Reason::Conflict]))
        }
        _ => Err(call_error("DynamoDB", "TransactWriteItems", e)),
    }
}

/// A failure natter decides a later retry may get past: throttled batch items, contention on one item.
pub(super) fn retryable(operation: &'static str, why: &'static str) -> BackendError {
    BackendError::Call {
        service: "DynamoDB",
        operation,
        retryable: true,
        source: why.into(),
    }
}

/// A request the SDK refused to build (a required field missing): a bug, never retried away.
pub(super) fn unbuildable(operation: &'static str, e: impl std::error::Error + Send + Sync + 'static) -> BackendError {
    BackendError::Call {
        service: "DynamoDB",
        operation,
        retryable: false,
        source: Box::new(e),
    }
}

/// For `.map_err`: a call that failed outright.
pub(super) fn failed<E>(operation: &'static str) -> impl FnOnce(SdkError<E, HttpResponse>) -> BackendError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    move |e| call_error("DynamoDB", operation, e)
}
