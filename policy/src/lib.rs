//! Countersign policies: the YAML format, validation with `FILE:LINE` errors, the userspace
//! twin of the kernel's matching (for `policy explain`), and compilation into the kernel maps
//! of `agent_common::policy`.
//!
//! ```no_run
//! # use std::path::PathBuf;
//! let policy = policy::Policy::load(&[PathBuf::from("policy.yaml")]).expect("valid policy");
//! let compiled = policy::compile(&policy, 0, &policy::HostResolver).expect("fits the maps");
//! # let _ = compiled;
//! ```

mod attempt;
mod cidr;
mod compile;
mod duration;
mod error;
mod explain;
mod lookup;
mod matching;
mod model;
mod parse;
mod raw;
mod resolve;
mod validate;

#[cfg(test)]
mod tests;

pub use attempt::{ConnectAttempt, ExecAttempt, Transport};
pub use compile::{compile, Compiled, CompiledGroup};
pub use duration::{format as format_duration, parse as parse_duration};
pub use error::{GroupLookupError, PolicyError, PolicyErrors, Subject};
pub use explain::{explain_connect, explain_exec, Explanation};
pub use matching::{connect_mismatch, exec_mismatch, Decision, Mismatch, RuleRef};
pub use model::{
    Action, AgentGroup, Approvers, ArgPattern, Cidr, ExecMatch, GrantSpec, Location, Match,
    NetMatch, Policy, PortRange, Protocol, Rule, RulePath,
};
pub use resolve::{FileId, HostResolver, Resolver};
