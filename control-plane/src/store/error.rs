//! Store errors, and how they reach a gRPC caller.

use thiserror::Error;

use crate::audit::{ChainError, VerifyError};

/// Why a store operation failed.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The database refused or could not be reached. The SQL text is never shown to callers
    /// (see the `tonic::Status` conversion): it can hold data of other tenants.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The migrations could not be applied (names the step).
    #[error("database migration {version} ({name}) failed: {source}")]
    Migration {
        /// Number of the step.
        version: i64,
        /// Its name.
        name: &'static str,
        /// What the database said.
        source: sqlx::Error,
    },
    /// Bad input (names the field).
    #[error("{0}")]
    Invalid(String),
    /// An unknown id (request, grant, policy revision).
    #[error("{0}")]
    NotFound(String),
    /// Optimistic concurrency lost (e.g. a policy put on a stale base revision).
    #[error("{0}")]
    Conflict(String),
    /// The object is not in a state that allows the operation (decided, expired, revoked …).
    #[error("{0}")]
    Precondition(String),
    /// A limit was reached (open approval requests of a session or host).
    #[error("{0}")]
    Exhausted(String),
    /// A request's `judge` refused the decision.
    #[error(transparent)]
    Refused(#[from] crate::decide::Refusal),
    /// The audit chain could not be written or does not verify.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// A stored value could not be read back (corrupt row, written by a newer version …).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The URL names neither SQLite nor PostgreSQL. Holds the scheme only: a URL can carry
    /// a password.
    #[error("unsupported database URL scheme {0:?} (expected sqlite: or postgres:)")]
    Url(String),
}

/// Audit chain failures.
#[derive(Debug, Error)]
pub enum AuditError {
    /// A record could not be sealed (encoding, full chain, empty chain for a checkpoint).
    #[error("audit chain: {0}")]
    Chain(#[from] ChainError),
    /// The stored chain does not verify: a record was edited, removed or reordered.
    /// `VerifyError::seq` names the first bad record; lines are `seq + 1`.
    #[error("audit chain does not verify: {0}")]
    Verify(#[from] VerifyError),
}

impl From<ChainError> for StoreError {
    fn from(e: ChainError) -> Self {
        StoreError::Audit(AuditError::Chain(e))
    }
}

impl From<StoreError> for tonic::Status {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid(m) => tonic::Status::invalid_argument(m),
            StoreError::NotFound(m) => tonic::Status::not_found(m),
            StoreError::Conflict(m) | StoreError::Precondition(m) => {
                tonic::Status::failed_precondition(m)
            }
            StoreError::Refused(refusal) => refusal.into(),
            StoreError::Exhausted(m) => tonic::Status::resource_exhausted(m),
            StoreError::Database(e) => {
                // Logged in full here, shown to the caller only by category.
                tracing::error!(error = %e, "store: database error");
                match e {
                    sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Io(_)
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::WorkerCrashed => {
                        tonic::Status::unavailable("the server's database is unreachable")
                    }
                    _ => tonic::Status::internal("database error (see the server log)"),
                }
            }
            StoreError::Audit(e) => tonic::Status::internal(e.to_string()),
            StoreError::Corrupt(m) => tonic::Status::internal(format!("corrupt stored data: {m}")),
            other @ (StoreError::Migration { .. } | StoreError::Url(_)) => {
                tracing::error!(error = %other, "store: internal error");
                tonic::Status::internal("database error (see the server log)")
            }
        }
    }
}
