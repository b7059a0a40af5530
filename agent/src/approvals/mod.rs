//! The daemon's side of approvals: the requests of each session as the control plane reports
//! them, and the latest refusals the kernel reported, both for the agent socket.

pub mod refusals;
pub mod table;

pub use refusals::{Refusals, Refused};
pub use table::{Entry, GrantInfo, RequestTable, State};
