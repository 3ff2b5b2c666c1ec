//! The consent domain's error: what went wrong in terms of the domain (an invalid value, a
//! missing tenant, a conflict, a retention period still running, a failed log or store). The one
//! mapping to HTTP statuses lives in `api::error`; nothing here knows HTTP.

use crate::consent::address;
use crate::log::LogError;
use crate::store::StoreError;

/// Errors of the consent domain.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// A value is well-formed but not acceptable (bad address, unknown purpose, …).
    #[error("{0}")]
    Invalid(String),
    /// The tenant, subject or collection point does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state (nothing to confirm, idempotency key reuse).
    #[error("{0}")]
    Conflict(String),
    /// Personal data may not be erased yet: the retention period runs until the given time.
    #[error("the record must be kept until {0} (one month after the last event; one year under a legal hold)")]
    RetentionRunning(String),
    /// The request is malformed (e.g. its Idempotency-Key).
    #[error("{0}")]
    Malformed(String),
    /// Some items of a batch are invalid; nothing was recorded.
    #[error("{} of the events are invalid; nothing was recorded", .0.len())]
    InvalidItems(Vec<(usize, String)>),
    /// The log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<diesel::result::Error> for DomainError {
    fn from(e: diesel::result::Error) -> Self {
        DomainError::Store(StoreError::Query(e))
    }
}

impl From<address::AddressError> for DomainError {
    fn from(e: address::AddressError) -> Self {
        DomainError::Invalid(e.to_string())
    }
}
