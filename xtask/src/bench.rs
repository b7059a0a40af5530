//! `cargo xtask bench`: the benchmarks, by suite (`--suite`, default all of them).
//!
//! - `hooks`: the cost of the agent's hooks against a baseline without the agent, measured in
//!   the same run, on the host (fallback mode) and in a VM booting Linux 6.1 with BPF LSM (LSM
//!   mode). Both runs execute `cs-bench suite` (tests/src/bin/cs-bench), which orchestrates
//!   everything and prints a markdown report; reports in `target/bench/<env>.md`.
//! - `approvals`, `chat` and `upload`: the control plane's latency (the approver on the CLI;
//!   in Slack against the CLI) and throughput on the host, run by `cs-loop`
//!   ([`control_plane`]); reports in `target/bench/approvals.md`, `chat.md` and `upload.md`.
//!
//! This command builds the binaries, starts the runs and keeps the reports.

use std::{fs, path::PathBuf, process::Command, time::Duration};

use anyhow::{bail, Context as _, Result};
use clap::{Args, ValueEnum};

use crate::{artifacts, initramfs, kernels::Series, setup, util, vm::Vm};

mod control_plane;

/// Line cs-bench prints before its report (`report::BEGIN` in cs-bench).
const REPORT_BEGIN: &str = "<!-- cs-bench report -->";
/// Line cs-bench prints after its report (`report::END` in cs-bench).
const REPORT_END: &str = "<!-- end of cs-bench report -->";
/// Longest a run (host or VM) may take.
const TIMEOUT: Duration = Duration::from_secs(60 * 60);
/// The kernel of the VM run: the oldest series with every LSM hook the agent uses.
const VM_SERIES: Series = Series::V6_1;

/// Options of `cargo xtask bench`.
#[derive(Args)]
pub struct Options {
    /// Which benchmarks to run.
    #[arg(long, value_enum, default_value_t = Suite::All)]
    suite: Suite,
    /// hooks: the host and/or the VM run (approvals, chat and upload run on the host only).
    #[command(flatten)]
    runs: crate::runs::Runs,
    /// hooks: rounds per configuration; the report gives their median.
    #[arg(long, default_value_t = 7)]
    rounds: u32,
    #[command(flatten)]
    control_plane: control_plane::ServerOptions,
}

/// The benchmark suites.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Suite {
    /// Hook overhead against a no-agent baseline (host and VM).
    Hooks,
    /// Refusal → request visible, approval → retry passes (host, root).
    Approvals,
    /// The same with the approver in Slack, against the CLI in the same run (host, root).
    Chat,
    /// Event upload throughput into SQLite and PostgreSQL (host).
    Upload,
    /// All of them.
    All,
}

impl Suite {
    fn includes(self, other: Suite) -> bool {
        self == Suite::All || self == other
    }
}

/// The binaries a run needs.
struct Binaries {
    agent: PathBuf,
    bench: PathBuf,
}

/// Runs the chosen suites, prints and writes the reports.
pub fn run(opts: &Options) -> Result<()> {
    let mut reports = Vec::new();
    let mut failures = Vec::new();
    if opts.suite.includes(Suite::Hooks) {
        hooks(opts, &mut reports, &mut failures)?;
    }
    let wanted = ServerSuites {
        approvals: opts.suite.includes(Suite::Approvals),
        chat: opts.suite.includes(Suite::Chat),
        upload: opts.suite.includes(Suite::Upload),
    };
    let any = wanted.approvals || wanted.chat || wanted.upload;
    if any && !opts.runs.host() {
        println!("\napprovals, chat and upload run on the host only: skipped (--vm-only)");
    } else if any {
        server_suites(opts, &wanted, &mut reports, &mut failures)?;
    }
    for (path, report) in &reports {
        println!("\n{report}\n(written to {})", path.display());
    }
    if !failures.is_empty() {
        bail!("benchmark failed:\n  {}", failures.join("\n  "));
    }
    Ok(())
}

/// A report: where it was written and its text.
type Report = (PathBuf, String);

/// The hooks suite on the host and/or in the VM.
fn hooks(opts: &Options, reports: &mut Vec<Report>, failures: &mut Vec<String>) -> Result<()> {
    let start = util::heading("setup and build (hooks)");
    let built = setup::run().and_then(|()| build());
    util::done("setup and build (hooks)", start, built.is_ok());
    let bins = built?;
    let rounds = opts.rounds.to_string();
    let runs: [(&str, bool); 2] = [("host", opts.runs.host()), ("vm", opts.runs.vm())];
    for (env, wanted) in runs {
        if !wanted {
            continue;
        }
        let title = format!("benchmark: hooks, {env}");
        let start = util::heading(&title);
        let result = if env == "host" {
            host(&bins, &rounds)
        } else {
            in_vm(&bins, &rounds)
        }
        .and_then(|lines| save(env, &lines, (REPORT_BEGIN, REPORT_END)));
        util::done(&title, start, result.is_ok());
        match result {
            Ok(report) => reports.push(report),
            Err(e) => failures.push(format!("hooks, {env}: {e:#}")),
        }
    }
    Ok(())
}

/// Which of the control plane's suites to run.
struct ServerSuites {
    approvals: bool,
    chat: bool,
    upload: bool,
}

/// The approvals, chat and/or upload suites, on the host.
fn server_suites(
    opts: &Options,
    wanted: &ServerSuites,
    reports: &mut Vec<Report>,
    failures: &mut Vec<String>,
) -> Result<()> {
    let start = util::heading("setup and build (control plane)");
    // The upload suite alone needs no root: only the approval loops (a daemon) set the
    // machine up.
    let loops = wanted.approvals || wanted.chat;
    let setup = if loops { setup::run() } else { Ok(()) };
    let built = setup.and_then(|()| control_plane::build(loops));
    util::done("setup and build (control plane)", start, built.is_ok());
    let bins = built?;
    let markers = (control_plane::REPORT_BEGIN, control_plane::REPORT_END);
    let suites: [(&str, bool, control_plane::Suite); 3] = [
        ("approvals", wanted.approvals, control_plane::approvals),
        ("chat", wanted.chat, control_plane::chat),
        ("upload", wanted.upload, control_plane::upload),
    ];
    for (name, wanted, suite) in suites {
        if !wanted {
            continue;
        }
        let title = format!("benchmark: {name}");
        let start = util::heading(&title);
        let result =
            suite(&bins, &opts.control_plane).and_then(|lines| save(name, &lines, markers));
        util::done(&title, start, result.is_ok());
        match result {
            Ok(report) => reports.push(report),
            Err(e) => failures.push(format!("{name}: {e:#}")),
        }
    }
    Ok(())
}

/// The agent as the tests use it; cs-bench optimised, since its loops are what is timed.
fn build() -> Result<Binaries> {
    let agent = artifacts::cargo_build(&["build", "-p", "agent", "--bins"])?;
    let bench =
        artifacts::cargo_build(&["build", "--release", "-p", "tests", "--bin", "cs-bench"])?;
    Ok(Binaries {
        agent: artifacts::find(&agent, "countersign-agent", "bin")?,
        bench: artifacts::find(&bench, "cs-bench", "bin")?,
    })
}

fn suite_args(agent: &str, mode: &str, env: &str, rounds: &str) -> Vec<String> {
    [
        "suite", "--agent", agent, "--mode", mode, "--env", env, "--rounds", rounds,
    ]
    .map(String::from)
    .to_vec()
}

/// On this machine, whose kernel refuses BPF LSM: fallback mode, forced.
fn host(bins: &Binaries, rounds: &str) -> Result<Vec<String>> {
    let agent = bins.agent.to_string_lossy();
    let mut cmd = Command::new(&bins.bench);
    cmd.args(suite_args(&agent, "fallback", "host", rounds));
    let teed = util::run_tee(&mut cmd, "[host] ", TIMEOUT)?;
    if teed.timed_out {
        bail!("timed out after {}s", TIMEOUT.as_secs());
    }
    if teed.code != Some(0) {
        bail!("cs-bench suite failed (exit {:?})", teed.code);
    }
    Ok(teed.lines)
}

/// In a VM booting Linux 6.1 with BPF LSM on: LSM mode.
fn in_vm(bins: &Binaries, rounds: &str) -> Result<Vec<String>> {
    let mut cmd = vec!["/bin/cs-bench".to_owned()];
    cmd.extend(suite_args("/bin/countersign-agent", "lsm", "vm", rounds));
    let spec = initramfs::Spec {
        bins: vec![
            (bins.agent.clone(), "countersign-agent".to_owned()),
            (bins.bench.clone(), "cs-bench".to_owned()),
        ],
        env: Vec::new(),
        cmd,
    };
    let outcome = Vm {
        series: VM_SERIES,
        bpf_lsm: true,
        spec,
        timeout: TIMEOUT,
    }
    .run()?;
    if let Some(why) = outcome.failure {
        bail!("VM {VM_SERIES}: {why}");
    }
    Ok(outcome.lines)
}

/// Cuts the report (between `markers`) out of the run's output and writes it to
/// `target/bench/<name>.md`.
fn save(name: &str, lines: &[String], markers: (&str, &str)) -> Result<Report> {
    let report = extract(lines, markers)
        .with_context(|| format!("no `{}` block in the output", markers.0))?;
    let dir = util::repo_root().join("target").join("bench");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("{name}.md"));
    fs::write(&path, &report).with_context(|| format!("writing {}", path.display()))?;
    Ok((path, report))
}

/// The lines between the last `(begin, end)` markers (a VM console may add `\r` or spaces).
fn extract(lines: &[String], (begin_marker, end_marker): (&str, &str)) -> Option<String> {
    let begin = lines.iter().rposition(|l| l.trim() == begin_marker)?;
    let len = lines[begin + 1..]
        .iter()
        .position(|l| l.trim() == end_marker)?;
    let body: Vec<&str> = lines[begin + 1..begin + 1 + len]
        .iter()
        .map(|l| l.trim_end())
        .collect();
    Some(format!("{}\n", body.join("\n").trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_consistent() {
        use clap::Args as _;
        Options::augment_args(clap::Command::new("bench")).debug_assert();
    }

    #[test]
    fn extracts_the_report() {
        let lines = [
            "boot",
            REPORT_BEGIN,
            "## title\r",
            "",
            "| a | b |",
            REPORT_END,
            "x",
        ]
        .map(String::from);
        let markers = (REPORT_BEGIN, REPORT_END);
        assert_eq!(
            extract(&lines, markers).expect("report"),
            "## title\n\n| a | b |\n"
        );
        assert_eq!(extract(&lines[..4], markers), None);
        let other = (control_plane::REPORT_BEGIN, control_plane::REPORT_END);
        assert_eq!(extract(&lines, other), None);
    }
}
