//! Test harness of Countersign's root-only integration tests (the `enforcement` test target).
//!
//! Each test builds a [`TestBed`]: its own temp directory with copies of `cs-probe` to guard,
//! its own agent cgroup, its own `countersign-agent run` daemon. The tests then run cs-probe
//! inside the cgroup and assert what a user would see: the errno, the kill, the event line.
//! Dropping the test bed stops the daemon, unloads its programs and removes the cgroups, also
//! when the test panics (and then prints the daemon's stderr and the last events).

pub mod agent;
pub mod bench;
pub mod cgroup;
pub mod collision;
pub mod control_plane;
pub mod diagnostics;
pub mod env;
pub mod events;
pub mod leftovers;
pub mod mounts;
pub mod net;
pub mod outcome;
pub mod process;
pub mod scratch_fs;
pub mod testbed;

pub use env::Mode;
pub use events::Event;
pub use outcome::{Outcome, Verdict};
pub use testbed::{file_identity, GroupSettings, TestBed};
