//! `cargo xtask test`: the whole pipeline CI runs. Lint and unit tests, then the enforcement
//! tests on the host (fallback mode: the host kernel refuses BPF LSM) and in VMs booting
//! Debian kernels with BPF LSM on (and once off). Ends with `total: N passed, M failed`.

use std::{path::PathBuf, process::Command, time::Duration};

use anyhow::Result;
use clap::Args;

use crate::{
    artifacts, initramfs,
    kernels::Series,
    libtest::{self, Counts},
    setup, util,
    vm::Vm,
};

/// How long one integration run (host or VM) may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Options of `cargo xtask test`.
#[derive(Args)]
pub struct Options {
    /// Only the host (fallback mode) integration run.
    #[arg(long, conflicts_with = "vm_only")]
    host_only: bool,
    /// Only the VM integration runs.
    #[arg(long)]
    vm_only: bool,
    /// Only VM runs on these kernel series (repeatable).
    #[arg(long = "kernel")]
    kernels: Vec<Series>,
    /// Skip `cargo fmt --check` and clippy.
    #[arg(long)]
    skip_lint: bool,
    /// Only integration tests whose name contains this (passed to the test binary).
    #[arg(long)]
    filter: Option<String>,
}

/// The binaries the integration runs need.
struct Binaries {
    agent: PathBuf,
    probe: PathBuf,
    enforcement: PathBuf,
}

/// Counts and failures gathered stage by stage.
#[derive(Default)]
struct Report {
    counts: Counts,
    failures: Vec<String>,
}

impl Report {
    /// Runs one stage under a timed heading; its error is recorded, not propagated.
    fn stage<T>(&mut self, title: &str, f: impl FnOnce(&mut Self) -> Result<T>) -> Option<T> {
        let start = util::heading(title);
        let before = self.counts.failed;
        let result = f(self);
        util::done(title, start, result.is_ok());
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                println!("xtask: {title}: {e:#}");
                // A stage that broke without a failed test (lint, crash, boot) still counts once,
                // so the closing line never says "0 failed" for a failed pipeline.
                if self.counts.failed == before {
                    self.counts.failed += 1;
                }
                self.failures.push(format!("{title}: {e:#}"));
                None
            }
        }
    }
}

/// Runs the pipeline; the exit code is non-zero when any stage failed.
pub fn run(opts: &Options) -> Result<std::process::ExitCode> {
    let mut report = Report::default();
    let vms = vm_matrix(opts);
    let ready = report.stage("setup", |_| {
        setup::run()?;
        let mut series: Vec<Series> = vms.iter().map(|&(s, _)| s).collect();
        series.dedup();
        crate::kernels::run(&series)
    });
    if ready.is_some() {
        if !opts.skip_lint {
            report.stage("rustfmt", |_| {
                util::run(Command::new("cargo").args(["fmt", "--all", "--", "--check"]))
            });
            report.stage("clippy", |_| {
                let mut clippy = Command::new("cargo");
                clippy.args([
                    "clippy",
                    "--workspace",
                    "--exclude",
                    "agent-ebpf",
                    "--all-targets",
                ]);
                util::run(clippy.args(["--", "-D", "warnings"]))
            });
        }
        report.stage("unit tests", |r| {
            let mut cargo = Command::new("cargo");
            cargo.args([
                "test",
                "--workspace",
                "--exclude",
                "agent-ebpf",
                "--exclude",
                "tests",
            ]);
            tee_counted(r, &mut cargo, "")
        });
        if let Some(bins) = report.stage("build the agent and the integration tests", |_| build()) {
            if !opts.vm_only {
                report.stage("integration tests on the host (fallback mode)", |r| {
                    host(r, &bins, opts)
                });
            }
            for &(series, bpf_lsm) in &vms {
                let mode = if bpf_lsm { "lsm" } else { "fallback" };
                let title = format!("integration tests in a VM: Linux {series}, {mode} mode");
                report.stage(&title, |r| in_vm(r, &bins, opts, series, bpf_lsm));
            }
        }
    }
    println!();
    for failure in &report.failures {
        println!("FAILED: {failure}");
    }
    let c = report.counts;
    if c.ignored > 0 {
        println!("({} ignored)", c.ignored);
    }
    // CI reads this line: it must stay the last one, in exactly this form.
    println!("total: {} passed, {} failed", c.passed, c.failed);
    Ok(if report.failures.is_empty() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}

/// (kernel, BPF LSM on) pairs to run; 6.1 also runs without BPF LSM to test the fallback.
fn vm_matrix(opts: &Options) -> Vec<(Series, bool)> {
    if opts.host_only {
        return Vec::new();
    }
    let all = [
        (Series::V5_10, true),
        (Series::V6_1, true),
        (Series::V6_12, true),
        (Series::V6_1, false),
    ];
    all.into_iter()
        .filter(|(s, _)| opts.kernels.is_empty() || opts.kernels.contains(s))
        .collect()
}

fn build() -> Result<Binaries> {
    let agent = artifacts::cargo_build(&["build", "-p", "agent", "--bins"])?;
    let probe = artifacts::cargo_build(&["build", "-p", "tests", "--bins"])?;
    let tests = artifacts::cargo_build(&["test", "-p", "tests", "--no-run"])?;
    Ok(Binaries {
        agent: artifacts::find(&agent, "countersign-agent", "bin")?,
        probe: artifacts::find(&probe, "cs-probe", "bin")?,
        enforcement: artifacts::find(&tests, "enforcement", "test")?,
    })
}

/// Runs `cmd` echoing its output, adds its libtest counts, fails unless it exited 0.
fn tee_counted(report: &mut Report, cmd: &mut Command, prefix: &str) -> Result<()> {
    let teed = util::run_tee(cmd, prefix, RUN_TIMEOUT)?;
    report.counts += libtest::sum(&teed.lines);
    match teed.code {
        Some(0) => Ok(()),
        _ if teed.timed_out => anyhow::bail!("timed out after {}s", RUN_TIMEOUT.as_secs()),
        code => anyhow::bail!("exited with {code:?}"),
    }
}

/// Arguments of the enforcement test binary.
fn test_args(opts: &Options) -> Vec<String> {
    let mut args = vec!["--test-threads=1".to_owned(), "--color=never".to_owned()];
    args.extend(opts.filter.clone());
    args
}

fn test_env(agent: &str, probe: &str, mode: &str, env: &str) -> Vec<(String, String)> {
    [
        ("COUNTERSIGN_AGENT_BIN", agent),
        ("COUNTERSIGN_PROBE_BIN", probe),
        ("COUNTERSIGN_EXPECT_MODE", mode),
        ("COUNTERSIGN_ENV", env),
        ("RUST_BACKTRACE", "1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn host(report: &mut Report, bins: &Binaries, opts: &Options) -> Result<()> {
    let agent = bins.agent.to_string_lossy();
    let probe = bins.probe.to_string_lossy();
    let mut cmd = Command::new(&bins.enforcement);
    cmd.args(test_args(opts))
        .envs(test_env(&agent, &probe, "fallback", "host"));
    tee_counted(report, &mut cmd, "[host] ")
}

fn in_vm(
    report: &mut Report,
    bins: &Binaries,
    opts: &Options,
    series: Series,
    bpf_lsm: bool,
) -> Result<()> {
    let mode = if bpf_lsm { "lsm" } else { "fallback" };
    let mut cmd = vec!["/bin/enforcement".to_owned()];
    cmd.extend(test_args(opts));
    let mut binaries = vec![
        (bins.agent.clone(), "countersign-agent".to_owned()),
        (bins.probe.clone(), "cs-probe".to_owned()),
        (bins.enforcement.clone(), "enforcement".to_owned()),
    ];
    // busybox's `ip` lacks `netns`, which the network tests use.
    if let Ok(ip) = util::output(Command::new("sh").args(["-c", "command -v ip"])) {
        binaries.push((PathBuf::from(ip.trim()), "ip".to_owned()));
    }
    let spec = initramfs::Spec {
        bins: binaries,
        env: test_env("/bin/countersign-agent", "/bin/cs-probe", mode, "vm"),
        cmd,
    };
    let outcome = Vm {
        series,
        bpf_lsm,
        spec,
        timeout: RUN_TIMEOUT,
    }
    .run()?;
    report.counts += libtest::sum(&outcome.lines);
    match outcome.failure {
        Some(why) => anyhow::bail!(why),
        None => Ok(()),
    }
}
