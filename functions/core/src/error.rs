//! Errors: refusals of the rules (the client's doing) apart from backend failures (ours, or AWS's).

use crate::frames::ErrorCode;

pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A backend call that failed: DynamoDB, SQS or the @connections API.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The call failed; `retryable` when the same call may succeed later (throttling, timeouts, 5xx, network).
    #[error("{service} {operation} failed")]
    Call {
        service: &'static str,
        operation: &'static str,
        retryable: bool,
        #[source]
        source: BoxError,
    },
    /// An item or job did not have the shape this code writes: a bug or a foreign writer, never retried away.
    #[error("a stored {what} could not be read")]
    Corrupt {
        what: &'static str,
        #[source]
        source: BoxError,
    },
    /// The invocation ran out of time waiting for a concurrent attempt.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// Some of a batch of independent operations failed (the posts of a fan-out, the entries of an SQS batch):
    /// the job is retried, and repeating the parts that went through is harmless.
    #[error("{failed} of {of} {what} failed")]
    Partial {
        what: &'static str,
        failed: usize,
        of: usize,
    },
}

impl BackendError {
    pub fn corrupt(what: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Corrupt {
            what,
            source: source.into(),
        }
    }

    /// Whether the client should be told to retry (`unavailable`) rather than that we broke (`internal`).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Call { retryable, .. } => *retryable,
            Self::Corrupt { .. } => false,
            Self::Timeout(_) | Self::Partial { .. } => true,
        }
    }
}

/// Why the rules refuse a request. The message is shown to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    UnknownAction(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    RateLimited(String),
}

/// What a rule can end with besides success.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error(transparent)]
    Backend(#[from] BackendError),
}

impl Failure {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Rejected(Rejection::BadRequest(_)) => ErrorCode::BadRequest,
            Self::Rejected(Rejection::NotFound(_)) => ErrorCode::NotFound,
            Self::Rejected(Rejection::Forbidden(_)) => ErrorCode::Forbidden,
            Self::Rejected(Rejection::UnknownAction(_)) => ErrorCode::UnknownAction,
            Self::Rejected(Rejection::TooLarge(_)) => ErrorCode::TooLarge,
            Self::Rejected(Rejection::RateLimited(_)) => ErrorCode::RateLimited,
            Self::Backend(e) if e.is_retryable() => ErrorCode::Unavailable,
            Self::Backend(_) => ErrorCode::Internal,
        }
    }

    /// The message for the error frame: a refusal says why; a backend failure never leaks internals.
    pub fn client_message(&self) -> String {
        match self {
            Self::Rejected(r) => r.to_string(),
            Self::Backend(e) if e.is_retryable() => "a backend is unavailable; retry with the same ids".to_owned(),
            Self::Backend(_) => "internal error".to_owned(),
        }
    }
}

pub fn not_found(what: impl Into<String>) -> Failure {
    Failure::Rejected(Rejection::NotFound(what.into()))
}

pub fn forbidden(what: impl Into<String>) -> Failure {
    Failure::Rejected(Rejection::Forbidden(what.into()))
}

pub fn too_large(what: impl Into<String>) -> Failure {
    Failure::Rejected(Rejection::TooLarge(what.into()))
}

pub fn bad_request(what: impl Into<String>) -> Failure {
    Failure::Rejected(Rejection::BadRequest(what.into()))
}
