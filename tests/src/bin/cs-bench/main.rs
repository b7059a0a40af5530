//! `cs-bench`: the workloads of `cargo xtask bench` and the orchestration that measures the
//! cost of Countersign's hooks against a baseline without the agent, in the same run.
//!
//! Like cs-probe it needs only std and libc (plus the test harness of this crate), so the
//! host run and the VM run (busybox userland) execute the very same code.
//!
//! Subcommands:
//! - `exec-loop N [PATH [ARG…]]` — `fork` + `execve(PATH, ARG…)` (default `/bin/true`) N times,
//!   waiting for each child; prints `ns_per_op=<wall-clock nanoseconds per exec>`.
//! - `exec-written N SIZE first|repeat` — writes copies of `/bin/true` padded to SIZE bytes
//!   and executes them: `first`, N fresh copies once each; `repeat`, one copy N times after an
//!   untimed first exec. Prints `ns_per_op=…` of the execs alone (the cost of a file an agent
//!   wrote, which the kernel side checks by content).
//! - `connect-loop N ADDR PORT` — `socket` + `connect` + `close` to a TCP listener N times;
//!   port 0 starts a listener thread on ADDR first. Prints `ns_per_op=…`.
//! - `file-loop N` — in a fresh temporary directory, N times: write a file, open it again,
//!   `stat`, rename, truncate, unlink (the LSM guards' file hooks). Prints `ns_per_op=…`.
//! - `suite --agent PATH --mode lsm|fallback --env host|vm [--rounds R] [--exec-ops N]
//!   [--connect-ops N] [--file-ops N] [--python-ops N] [--written-ops N]` — the whole benchmark (needs root). Each round runs the workloads
//!   without the agent, loads the agent with a 100-rule policy, runs them outside and inside a
//!   watched cgroup (alternating), unloads it and runs them without it again. Prints a
//!   markdown report between [`report::BEGIN`] and [`report::END`] lines. Everything it
//!   created (daemon, pins, cgroups, temp files) is removed on success, on error and on
//!   SIGINT/SIGTERM.
//!
//! Exit code: 0 on success, 1 on any failure (message on stderr), 2 on usage errors.

mod policy;
mod report;
mod suite;
mod workload;

use std::process::ExitCode;

use tests::bench::{cli, Failure};

fn main() -> ExitCode {
    cli::main(
        "cs-bench",
        &[
            ("exec-loop", workload::exec_cmd),
            ("exec-written", workload::written_cmd),
            ("connect-loop", workload::connect_cmd),
            ("file-loop", workload::file_cmd),
            ("suite", suite::cmd),
        ],
    )
}

/// Parses `value` of `what` as a number, or explains the usage error.
fn parse_num<T: std::str::FromStr>(what: &str, value: Option<&String>) -> Result<T, Failure> {
    let value = value.ok_or_else(|| Failure::Usage(format!("{what} is missing")))?;
    value
        .parse()
        .map_err(|_| Failure::Usage(format!("{what}: {value:?} is not a valid number")))
}
