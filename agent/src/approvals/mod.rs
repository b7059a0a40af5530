//! The daemon's side of approvals: the requests of each session as the control plane reports
//! them, the latest refusals the kernel reported, both for the agent socket, and the exact
//! operations that grant orders name.

pub mod bindings;
pub mod refusals;
pub mod table;

pub use bindings::Bindings;
pub use refusals::Refusals;
pub use table::{Entry, GrantInfo, RequestTable, State};
