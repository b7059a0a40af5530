//! `cargo xtask bench`: the cost of the agent's hooks against a baseline without the agent,
//! measured in the same run, on the host (fallback mode) and in a VM booting Linux 6.1 with
//! BPF LSM (LSM mode). Both runs execute `cs-bench suite` (tests/src/bin/cs-bench), which
//! orchestrates everything and prints a markdown report; this command builds the binaries,
//! starts the runs, and keeps each report in `target/bench/<env>.md`.

use std::{fs, path::PathBuf, process::Command, time::Duration};

use anyhow::{bail, Context as _, Result};
use clap::Args;

use crate::{artifacts, initramfs, kernels::Series, setup, util, vm::Vm};

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
    #[command(flatten)]
    runs: crate::runs::Runs,
    /// Rounds per configuration; the report gives their median.
    #[arg(long, default_value_t = 7)]
    rounds: u32,
}

/// The binaries a run needs.
struct Binaries {
    agent: PathBuf,
    bench: PathBuf,
}

/// Builds, runs on the host and/or in the VM, prints and writes the reports.
pub fn run(opts: &Options) -> Result<()> {
    let start = util::heading("setup and build");
    let built = setup::run().and_then(|()| build());
    util::done("setup and build", start, built.is_ok());
    let bins = built?;
    let rounds = opts.rounds.to_string();
    let mut reports = Vec::new();
    let mut failures = Vec::new();
    let runs: [(&str, bool); 2] = [("host", opts.runs.host()), ("vm", opts.runs.vm())];
    for (env, wanted) in runs {
        if !wanted {
            continue;
        }
        let title = format!("benchmark: {env}");
        let start = util::heading(&title);
        let result = if env == "host" {
            host(&bins, &rounds)
        } else {
            in_vm(&bins, &rounds)
        }
        .and_then(|lines| save(env, &lines));
        util::done(&title, start, result.is_ok());
        match result {
            Ok((path, report)) => reports.push((path, report)),
            Err(e) => failures.push(format!("{env}: {e:#}")),
        }
    }
    for (path, report) in &reports {
        println!("\n{report}\n(written to {})", path.display());
    }
    if !failures.is_empty() {
        bail!("benchmark failed:\n  {}", failures.join("\n  "));
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

/// Cuts the report out of the run's output and writes it to `target/bench/<env>.md`.
fn save(env: &str, lines: &[String]) -> Result<(PathBuf, String)> {
    let report =
        extract(lines).with_context(|| format!("no `{REPORT_BEGIN}` block in the output"))?;
    let dir = util::repo_root().join("target").join("bench");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("{env}.md"));
    fs::write(&path, &report).with_context(|| format!("writing {}", path.display()))?;
    Ok((path, report))
}

/// The lines between the last report markers (a VM console may add `\r` or spaces).
fn extract(lines: &[String]) -> Option<String> {
    let begin = lines.iter().rposition(|l| l.trim() == REPORT_BEGIN)?;
    let len = lines[begin + 1..]
        .iter()
        .position(|l| l.trim() == REPORT_END)?;
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
        assert_eq!(extract(&lines).expect("report"), "## title\n\n| a | b |\n");
        assert_eq!(extract(&lines[..4]), None);
    }
}
