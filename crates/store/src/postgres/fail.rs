//! How a failure inside a transaction is told apart: a lost race to run again, a database
//! that is gone, or an error for the caller; and how it reaches the caller without the
//! row values PostgreSQL quotes.

use crate::StoreError;
use tokio_postgres::error::SqlState;

/// A failure inside a transaction, kept raw until the retry loop has looked at it.
#[derive(Debug)]
pub(crate) enum Fail {
    Db(tokio_postgres::Error),
    Store(StoreError),
}

impl From<tokio_postgres::Error> for Fail {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Db(e)
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<serde_json::Error> for Fail {
    fn from(e: serde_json::Error) -> Self {
        Self::Store(StoreError::Corrupt(e.to_string()))
    }
}

impl Fail {
    pub(super) fn code(&self) -> Option<&SqlState> {
        match self {
            Self::Db(e) => e.code(),
            Self::Store(_) => None,
        }
    }

    /// Lost a race with another transaction: running it again can succeed.
    pub(super) fn retryable(&self, unique_too: bool) -> bool {
        match self.code() {
            Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED => true,
            Some(c) if *c == SqlState::UNIQUE_VIOLATION => unique_too,
            _ => false,
        }
    }

    /// The database or the connection is gone: nothing else can succeed now either.
    pub(super) fn unavailable(&self) -> bool {
        matches!(self, Self::Store(StoreError::Unavailable(_) | StoreError::Closed))
            || matches!(self, Self::Db(e) if db_unavailable(e))
    }

    pub(super) fn into_store(self) -> StoreError {
        match self {
            Self::Store(e) => e,
            Self::Db(e) => db_error(&e),
        }
    }
}

fn db_unavailable(e: &tokio_postgres::Error) -> bool {
    match e.code() {
        // No code: the connection failed (refused, reset, closed, timed out), unless a
        // value did not convert to or from its column, which is the data's fault.
        None => !converting(e),
        Some(c) => {
            let class = &c.code()[..2];
            // 08 connection, 53 resources, 57 operator intervention (shutdown,
            // statement timeout), 55P03 lock timeout, 40: a race lost too often.
            matches!(class, "08" | "53" | "57" | "40") || *c == SqlState::LOCK_NOT_AVAILABLE
        }
    }
}

/// A value that did not convert to or from its column (a stored document that no longer
/// reads): the error wraps the conversion's, where a lost connection wraps an I/O error
/// or nothing.
fn converting(e: &tokio_postgres::Error) -> bool {
    use std::error::Error;
    !e.is_closed() && e.source().is_some_and(|source| !source.is::<std::io::Error>())
}

/// The message without PostgreSQL's DETAIL, which can quote the row's values (an email in
/// a unique violation), so it never reaches a log or a client.
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

fn db_error(e: &tokio_postgres::Error) -> StoreError {
    if db_unavailable(e) {
        return StoreError::Unavailable(describe(e));
    }
    match e.code() {
        Some(c) if c.code().starts_with("23") => StoreError::Conflict(describe(e)),
        _ => StoreError::Internal(describe(e)),
    }
}
