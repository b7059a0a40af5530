//! Countersign's wire contract, shared by the control plane, the host daemon and the CLI:
//!
//! - [`pb`]: the gRPC API generated from `proto/countersign.proto` (messages, clients,
//!   servers);
//! - [`tls`]: the mutual-TLS client set-up every caller uses;
//! - [`binding`]: the check that a request's id is the operation it shows, which the server
//!   applies before any approver sees it;
//! - [`verdict`]: actions, outcomes, modes and event kinds between their Rust types and the
//!   wire, and the one reading of an uploaded record's verdict;
//! - [`agent_socket`]: the JSON-lines protocol of the daemon's agent socket;
//! - [`private_dir`]: state directories only their service may enter;
//! - [`display`]: agent-chosen text made safe to show a person, the same on every channel;
//! - [`adversarial`]: the command lines every channel's view is tested with.
//!
//! Nothing here depends on storage, chat or the kernel: a client of the API builds this crate
//! and nothing of the server's.

pub mod adversarial;
pub mod agent_socket;
pub mod binding;
pub mod display;
pub mod private_dir;
pub mod tls;
pub mod verdict;

#[allow(
    missing_docs,
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    reason = "generated code"
)]
pub mod pb {
    tonic::include_proto!("countersign.v1");
}

/// Flag of an uploaded event record standing for a line of the daemon's event log it could
/// not read (the sequence stays contiguous; the record is kept as evidence).
pub const UNREADABLE_LOG_LINE: &str = "unreadable_log_line";
