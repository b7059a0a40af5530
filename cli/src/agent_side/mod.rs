//! The commands an AI agent runs inside its session: they speak to the local daemon's agent
//! socket only, carry no credentials, and can approve nothing.

pub mod exec;
pub mod request;
pub mod socket;
pub mod wait;
pub mod why;
