//! Enforcement tests: a real kernel, a real daemon, real processes in agent cgroups.
//!
//! Needs root; `cargo xtask test` runs them on the host (fallback mode) and in VMs (LSM mode)
//! with `--test-threads=1` and the `COUNTERSIGN_*` variables (see `tests::env`). Every test
//! starts its own daemon on its own policy and cgroup, so tests do not depend on each other.

// The crate root's modules would resolve next to it, among the other test targets; keep them
// in enforcement/ instead.
#[path = "enforcement/args.rs"]
mod args;
#[path = "enforcement/attach.rs"]
mod attach;
#[path = "enforcement/copies.rs"]
mod copies;
#[path = "enforcement/delegation.rs"]
mod delegation;
#[path = "enforcement/exec.rs"]
mod exec;
#[path = "enforcement/grants.rs"]
mod grants;
#[path = "enforcement/identity.rs"]
mod identity;
#[path = "enforcement/lifecycle.rs"]
mod lifecycle;
#[path = "enforcement/network.rs"]
mod network;
#[path = "enforcement/tamper.rs"]
mod tamper;
#[path = "enforcement/written.rs"]
mod written;

use tests::TestBed;

/// A test bed named `name` (also the agent group's name; its cgroup is `/cs-test/<name>-<pid>`).
fn testbed(name: &str) -> TestBed {
    TestBed::new(name, option_env!("CARGO_BIN_EXE_cs-probe"))
}

/// An exec rule on one binary, as a YAML list item of `rules:`.
fn exec_rule(id: &str, binary: &str, action: &str) -> String {
    format!("  - id: {id}\n    exec: {{ binary: \"{binary}\" }}\n    action: {action}\n")
}

/// An exec rule on one binary with argument patterns (`args` is a YAML flow list).
fn exec_args_rule(id: &str, binary: &str, args: &str, action: &str) -> String {
    format!(
        "  - id: {id}\n    exec: {{ binary: \"{binary}\", args: {args} }}\n    action: {action}\n"
    )
}

/// A network rule (`network` is the YAML flow mapping of the rule's `network:`).
fn network_rule(id: &str, network: &str, action: &str) -> String {
    format!("  - id: {id}\n    network: {network}\n    action: {action}\n")
}
