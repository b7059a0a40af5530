//! The Countersign control plane: the gRPC server that brokers approvals (CLI, API, and the
//! chat bridges of the next milestone), turns them into grants on the right host, stores
//! everything (SQLite or PostgreSQL) and keeps the hash-chained audit trail.

pub mod chat;
pub mod decide;
pub mod people;
pub mod rpc;
pub mod server;
pub mod store;
pub mod tls;

/// The audit trail library (its own crate, shared with the CLI's offline verifier).
pub use countersign_audit as audit;
/// Development certificates (their own crate, shared with the CLI's `certs`).
pub use countersign_certs as certs;
