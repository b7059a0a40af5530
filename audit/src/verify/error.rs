//! Verification errors. Each names the line of the export and, once known, the sequence
//! number of the record at fault.

use thiserror::Error;

use crate::canonical::EncodeError;
use crate::checkpoint::CheckpointError;

/// Why an export does not verify. Lines are numbered from 1.
#[derive(Debug, Error)]
pub enum VerifyError {
    /// Reading failed.
    #[error("line {line}: read error: {source}")]
    Io {
        /// Line being read.
        line: u64,
        /// Underlying error.
        source: std::io::Error,
    },
    /// A line longer than the limit (a record is a few KiB; this protects the verifier).
    #[error("line {line} (expected seq {expected_seq}): longer than {limit} bytes")]
    LineTooLong {
        /// Offending line.
        line: u64,
        /// Sequence number the line should have held.
        expected_seq: u64,
        /// The limit.
        limit: usize,
    },
    /// Not an audit record: empty, not JSON, not UTF-8, wrong shape, unknown field …
    #[error("line {line} (expected seq {expected_seq}): not a valid audit record: {message}")]
    Malformed {
        /// Offending line.
        line: u64,
        /// Sequence number the line should have held.
        expected_seq: u64,
        /// What the parser said.
        message: String,
    },
    /// The sequence number is not the next one.
    #[error(
        "line {line}: seq {found} where seq {expected} was expected ({})",
        if found > expected { "records removed or reordered" } else { "records duplicated or reordered" }
    )]
    SeqMismatch {
        /// Offending line.
        line: u64,
        /// Next sequence number.
        expected: u64,
        /// What the line holds.
        found: u64,
    },
    /// The record's content does not match its hash.
    #[error("line {line} (seq {seq}): hash mismatch: the record was edited")]
    HashMismatch {
        /// Offending line.
        line: u64,
        /// The record.
        seq: u64,
    },
    /// `prev` is not the hash of the record before.
    #[error(
        "line {line} (seq {seq}): prev does not match the hash of the record before \
         (a record was removed, replaced or re-hashed)"
    )]
    PrevMismatch {
        /// Offending line.
        line: u64,
        /// The record.
        seq: u64,
    },
    /// A checkpoint record that is not well formed (wrong head, missing payload …).
    #[error("line {line} (seq {seq}): invalid checkpoint: {reason}")]
    InvalidCheckpoint {
        /// Offending line.
        line: u64,
        /// The record.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
    /// A checkpoint whose signature does not verify.
    #[error("line {line} (seq {seq}): checkpoint signature: {source}")]
    Signature {
        /// Offending line.
        line: u64,
        /// The record.
        seq: u64,
        /// Why.
        source: CheckpointError,
    },
    /// The checkpoint handed to the verifier out of band is itself not valid.
    #[error("expected checkpoint: {0}")]
    ExpectedCheckpoint(CheckpointError),
    /// The export holds the expected checkpoint's sequence number with another hash.
    #[error("line {line} (seq {seq}): differs from the expected signed checkpoint")]
    Diverged {
        /// Offending line.
        line: u64,
        /// The record.
        seq: u64,
    },
    /// The export ends before the expected checkpoint's head: its tail was cut off.
    #[error(
        "export ends {}, before the expected signed head seq {expected_seq}: truncated",
        match last_seq { Some(seq) => format!("at seq {seq}"), None => "without records".into() }
    )]
    Truncated {
        /// Head of the expected checkpoint.
        expected_seq: u64,
        /// Last sequence number present (None: no record at all).
        last_seq: Option<u64>,
    },
    /// No record at all.
    #[error("no audit records")]
    Empty,
    /// A record could not be re-serialized to check its hash.
    #[error("line {line}: {source}")]
    Encode {
        /// Offending line.
        line: u64,
        /// Why.
        source: EncodeError,
    },
}

impl VerifyError {
    /// The line at fault, when there is one.
    pub fn line(&self) -> Option<u64> {
        match self {
            VerifyError::Io { line, .. }
            | VerifyError::LineTooLong { line, .. }
            | VerifyError::Malformed { line, .. }
            | VerifyError::SeqMismatch { line, .. }
            | VerifyError::HashMismatch { line, .. }
            | VerifyError::PrevMismatch { line, .. }
            | VerifyError::InvalidCheckpoint { line, .. }
            | VerifyError::Signature { line, .. }
            | VerifyError::Diverged { line, .. }
            | VerifyError::Encode { line, .. } => Some(*line),
            VerifyError::ExpectedCheckpoint(_)
            | VerifyError::Truncated { .. }
            | VerifyError::Empty => None,
        }
    }

    /// The sequence number of the record at fault (for a sequence mismatch: the one found).
    pub fn seq(&self) -> Option<u64> {
        match self {
            VerifyError::SeqMismatch { found, .. } => Some(*found),
            VerifyError::HashMismatch { seq, .. }
            | VerifyError::PrevMismatch { seq, .. }
            | VerifyError::InvalidCheckpoint { seq, .. }
            | VerifyError::Signature { seq, .. }
            | VerifyError::Diverged { seq, .. } => Some(*seq),
            _ => None,
        }
    }
}
