//! `cs-loop`: the control-plane benchmarks of `cargo xtask bench --suite approvals|chat|upload`.
//!
//! Subcommands:
//! - `approvals --agent PATH --server PATH --cli PATH [--mode lsm|fallback] [--env host|vm]
//!   [--iterations N] [--warmup N] [--keep 1] [--via cli|slack|both]` (root) — a private
//!   `countersign-server` on SQLite and a `countersign-agent` connected to it; N times: an
//!   exec refused in an agent session, the time until the approver sees the request
//!   (ListPending over one mTLS channel, or its message in a local Slack), then an approval
//!   and the time until the retry passes (Decide, or a signed Slack click → a wait on the
//!   agent socket reports the grant → the same exec succeeds); with `both`, the two paths
//!   alternate and the report compares them. Checks the event log and the audit trail
//!   afterwards.
//! - `upload --server PATH --cli PATH [--postgres URL] [--daemons 1,4,16] [--events N]
//!   [--batch N] [--rounds R]` — synthetic daemons uploading events through
//!   AgentService.Register + UploadEvents, concurrently, into a SQLite and a PostgreSQL store;
//!   events/s per store and number of daemons, then checks that nothing was lost.
//! - `agent --socket PATH --guarded PATH` — the stand-in AI agent the approvals run starts
//!   inside the agent session: runs the execs and the waits on the agent socket it is told to
//!   on stdin (see `stand_in`).
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
/// The local Slack of the control plane's chat tests (one peer for them and `approvals --via
/// slack|both`).
#[path = "../../../../control-plane/tests/chat_support/slack.rs"]
#[expect(dead_code, reason = "the approvals run uses a part (no Socket Mode)")]
mod slack_peer;
mod stand_in;
mod stats;
mod upload;

use std::process::ExitCode;

use tests::bench::cli;

fn main() -> ExitCode {
    cli::main(
        "cs-loop",
        &[
            ("approvals", approvals::cmd),
            ("upload", upload::cmd),
            ("agent", stand_in::cmd),
        ],
    )
}

/// Progress on stderr (the report goes to stdout).
fn progress(msg: &str) {
    eprintln!("cs-loop: {msg}");
}
