use thiserror::Error;

/// Store failures. The server answers every one with a generic 5xx (or 503 for
/// `Unavailable`, 409 for `Conflict`, 410 for `Erased`) and logs the detail.
#[derive(Clone, Debug, Error)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("stored data could not be read: {0}")]
    Corrupt(String),
    #[error("not supported: {0}")]
    Unsupported(String),
    #[error("the store is closed")]
    Closed,
    /// The lead was erased: nothing may be written to it or read of it any more.
    #[error("lead {0} was erased")]
    Erased(leadflow_core::LeadId),
    /// A change feed cursor this store never gave out.
    #[error("unknown change cursor: {0}")]
    UnknownCursor(String),
    #[error("store error: {0}")]
    Internal(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked | ErrorCode::CannotOpen | ErrorCode::DiskFull) => {
                Self::Unavailable(e.to_string())
            }
            Some(ErrorCode::ConstraintViolation) => Self::Conflict(e.to_string()),
            _ => Self::Internal(e.to_string()),
        }
    }
}

/// The core refused to undo a merge.
impl From<leadflow_core::merges::Refusal> for StoreError {
    fn from(refusal: leadflow_core::merges::Refusal) -> Self {
        match refusal {
            leadflow_core::merges::Refusal::Conflict(why) => Self::Conflict(why),
            leadflow_core::merges::Refusal::Erased(id) => Self::Erased(id),
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        Self::Corrupt(e.to_string())
    }
}
