//! The agent socket: what processes inside an agent session may ask the daemon about their own
//! session (why they were refused, what is pending, wait for a decision, ask ahead).

mod ask;
pub mod fingerprint;
pub mod handler;
pub mod host;
pub mod server;
mod view;
mod wait;

pub use countersign_api::agent_socket as protocol;
pub use handler::{AgentApi, NOT_IN_SESSION};
pub use host::{Host, LiveGrant};

#[cfg(test)]
mod tests;
