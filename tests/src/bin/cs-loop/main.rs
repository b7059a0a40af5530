//! `cs-loop`: the control-plane benchmarks of `cargo xtask bench --suite approvals|upload`.
//!
//! Subcommands:
//! - `approvals --agent PATH --server PATH --cli PATH [--mode lsm|fallback] [--env host|vm]
//!   [--iterations N]` (root) — a private `countersign-server` on SQLite and a
//!   `countersign-agent` connected to it; N times: an exec refused in an agent session, the
//!   time until the approver sees the request (ListPending over one mTLS channel), then an
//!   approval and the time until the retry passes (Decide → the session's waiter reports the
//!   grant → the same exec succeeds). Checks the event log and the audit trail afterwards.
//! - `upload --server PATH --cli PATH [--postgres URL] [--daemons 1,4,16] [--events N]
//!   [--batch N] [--rounds R]` — synthetic daemons uploading events through
//!   AgentService.Register + UploadEvents, concurrently, into a SQLite and a PostgreSQL store;
//!   events/s per store and number of daemons, then checks that nothing was lost.
//! - `wait --socket PATH --fingerprint FP [--timeout-ms N]` — the helper the approvals run
//!   starts inside the agent session: one `wait` on the agent socket; prints `sent` once the
//!   request is written, then the daemon's answer line.
//!
//! `approvals` and `upload` print a markdown report between [`report::BEGIN`] and
//! [`report::END`] lines. Exit code: 0 on success (a missed latency or throughput target is
//! reported, not an error), 1 on any failure (a lost event, a refusal without its request, a
//! retry that did not pass…), 2 on usage errors.

mod approvals;
mod audit;
mod grpc;
mod harness;
mod options;
mod report;
mod stats;
mod upload;
mod waiter;

use std::process::ExitCode;

/// Why a subcommand failed.
enum Failure {
    /// Bad command line: exit 2.
    Usage(String),
    /// The benchmark itself failed: exit 1.
    Run(String),
}

impl From<String> for Failure {
    fn from(msg: String) -> Self {
        Self::Run(msg)
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let rest = args.get(2..).unwrap_or_default();
    let result = match args.get(1).map(String::as_str) {
        Some("approvals") => approvals::cmd(rest),
        Some("upload") => upload::cmd(rest),
        Some("wait") => waiter::cmd(rest),
        other => Err(Failure::Usage(format!(
            "unknown subcommand {other:?}: expected approvals, upload or wait"
        ))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(msg)) => {
            eprintln!("cs-loop: {msg}");
            ExitCode::from(2)
        }
        Err(Failure::Run(msg)) => {
            eprintln!("cs-loop: error: {msg}");
            ExitCode::FAILURE
        }
    }
}

/// Progress on stderr (the report goes to stdout).
fn progress(msg: &str) {
    eprintln!("cs-loop: {msg}");
}
