//! The agent socket: what processes inside an agent session may ask the daemon about their own
//! session (why they were refused, what is pending, wait for a decision, ask ahead).

pub mod protocol;
