//! The audit trail: append-only, hash-chained records with signed checkpoints, exports for
//! auditors (JSON Lines, CSV, OCSF) and a verifier. See docs/audit.md.
//!
//! Storage is not here: the server persists the records [`ChainState`] produces and reuses
//! [`record_hash`] and [`Verifier`] on what it reads back.

pub mod canonical;
pub mod chain;
pub mod checkpoint;
pub mod digest;
pub mod export;
pub mod filter;
pub mod record;
pub mod time;
pub mod verify;

#[cfg(test)]
mod tests;

pub use canonical::{record_hash, EncodeError};
pub use chain::{Chain, ChainError, ChainState, Entry};
pub use checkpoint::{Checkpoint, CheckpointError};
pub use digest::Digest;
pub use ed25519_dalek::{SigningKey, VerifyingKey};
pub use export::ExportError;
pub use filter::Filter;
pub use record::{Actor, ActorKind, Destination, Kind, Operation, Record, Subject};
pub use time::Timestamp;
pub use verify::{verify, verify_with, Anchor, Summary, Verifier, VerifyError};
