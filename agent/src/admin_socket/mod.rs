//! The daemon's local admin socket: newline-delimited JSON requests and responses.
//!
//! It is root-only (mode 0600) and refuses callers that run inside an agent group: an AI
//! agent, even one running as root, can never grant or reload anything through it.

pub mod client;
pub mod protocol;
pub mod server;
