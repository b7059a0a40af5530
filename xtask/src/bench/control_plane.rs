//! `cargo xtask bench --suite approvals|chat|upload`: the control plane's benchmarks, all run
//! by `cs-loop` (tests/src/bin/cs-loop) on this machine, which prints a markdown report.
//!
//! - `approvals` (root): a private server and agent; refusal → request visible to the
//!   approver, approval → the agent's retry passes; p50/p90/p99/max, target p99 ≤ 50 ms.
//! - `chat` (root): the same loop with the approver in a local Slack, alternating with the
//!   CLI's path in the same run as its baseline; targets: the Slack message within 1 s of the
//!   refusal, the retry after a click within 50 ms of the CLI's (p99).
//! - `upload`: 1, 4 and 16 synthetic daemons uploading at once into SQLite and into a
//!   throw-away PostgreSQL; events/s, target ≥ 20 000/s into SQLite.
//!
//! Everything is built in release mode: these figures are about the server and the daemon's
//! user space, whose speed (SQLite's C code above all) depends on the optimisation level,
//! unlike the hooks benchmark, where the kernel programs do the work.

use std::{path::PathBuf, process::Command, time::Duration};

use anyhow::{bail, Result};
use clap::Args;

use crate::{artifacts, postgres::Postgres, util};

/// Line cs-loop prints before its report (`report::BEGIN` in cs-loop).
pub const REPORT_BEGIN: &str = "<!-- cs-loop report -->";
/// Line cs-loop prints after its report (`report::END` in cs-loop).
pub const REPORT_END: &str = "<!-- end of cs-loop report -->";
/// Longest a run may take.
const TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// Options of the control-plane suites.
#[derive(Args)]
pub struct ServerOptions {
    /// approvals, chat: measured refusal → approval → retry iterations (chat: half of them
    /// through Slack).
    #[arg(long, default_value_t = 200)]
    iterations: u32,
    /// upload: rounds per store and number of daemons (the report gives their median).
    #[arg(long, default_value_t = 3)]
    upload_rounds: u32,
    /// upload: records per run, shared by the daemons.
    #[arg(long, default_value_t = 50_000)]
    upload_events: u64,
}

/// The binaries of the control-plane suites.
pub struct Binaries {
    /// The daemon (approvals and chat only).
    agent: Option<PathBuf>,
    server: PathBuf,
    cli: PathBuf,
    cs_loop: PathBuf,
}

/// One suite: runs cs-loop and returns its output lines.
pub type Suite = fn(&Binaries, &ServerOptions) -> Result<Vec<String>>;

/// Builds the server, the CLI, cs-loop and, for `approvals` and `chat`, the daemon (release).
pub fn build(with_agent: bool) -> Result<Binaries> {
    let mut args = vec![
        "build",
        "--release",
        "-p",
        "control-plane",
        "-p",
        "cli",
        "-p",
        "tests",
    ];
    if with_agent {
        args.extend(["-p", "agent", "--bin", "countersign-agent"]);
    }
    args.extend([
        "--bin",
        "countersign-server",
        "--bin",
        "countersign",
        "--bin",
        "cs-loop",
    ]);
    let built = artifacts::cargo_build(&args)?;
    Ok(Binaries {
        agent: if with_agent {
            Some(artifacts::find(&built, "countersign-agent", "bin")?)
        } else {
            None
        },
        server: artifacts::find(&built, "countersign-server", "bin")?,
        cli: artifacts::find(&built, "countersign", "bin")?,
        cs_loop: artifacts::find(&built, "cs-loop", "bin")?,
    })
}

/// The approvals run, on this machine (fallback mode: the host kernel refuses BPF LSM).
pub fn approvals(bins: &Binaries, opts: &ServerOptions) -> Result<Vec<String>> {
    approval_loop(bins, opts, "cli", "[approvals] ")
}

/// The approvals run with the approver in Slack and on the CLI in turn: the CLI's figures
/// are the baseline of Slack's, measured in the same run.
pub fn chat(bins: &Binaries, opts: &ServerOptions) -> Result<Vec<String>> {
    approval_loop(bins, opts, "both", "[chat] ")
}

/// `cs-loop approvals --via VIA`.
fn approval_loop(
    bins: &Binaries,
    opts: &ServerOptions,
    via: &str,
    prefix: &str,
) -> Result<Vec<String>> {
    let Some(agent) = &bins.agent else {
        bail!("the daemon was not built");
    };
    let mut cmd = Command::new(&bins.cs_loop);
    cmd.arg("approvals")
        .arg("--agent")
        .arg(agent)
        .args(["--mode", "fallback", "--env", "host"])
        .args(["--iterations", &opts.iterations.to_string()])
        .args(["--via", via]);
    server_args(&mut cmd, bins);
    run(&mut cmd, prefix)
}

/// The upload run: SQLite, and PostgreSQL when a throw-away server starts (without one the
/// report says PostgreSQL was not measured, and why is printed here).
pub fn upload(bins: &Binaries, opts: &ServerOptions) -> Result<Vec<String>> {
    let postgres = match Postgres::start() {
        Ok(pg) => Some(pg),
        Err(e) => {
            println!("    PostgreSQL not measured: no server could be started: {e:#}");
            None
        }
    };
    let mut cmd = Command::new(&bins.cs_loop);
    cmd.arg("upload")
        .args(["--rounds", &opts.upload_rounds.to_string()])
        .args(["--events", &opts.upload_events.to_string()]);
    server_args(&mut cmd, bins);
    if let Some(pg) = &postgres {
        cmd.args(["--postgres", pg.url()]);
    }
    // The PostgreSQL server is stopped and deleted when `postgres` drops, after the run.
    run(&mut cmd, "[upload] ")
}

fn server_args(cmd: &mut Command, bins: &Binaries) {
    cmd.arg("--server")
        .arg(&bins.server)
        .arg("--cli")
        .arg(&bins.cli);
}

fn run(cmd: &mut Command, prefix: &str) -> Result<Vec<String>> {
    let teed = util::run_tee(cmd, prefix, TIMEOUT)?;
    if teed.timed_out {
        bail!("timed out after {}s", TIMEOUT.as_secs());
    }
    if teed.code != Some(0) {
        bail!("cs-loop failed (exit {:?})", teed.code);
    }
    Ok(teed.lines)
}
