//! `cargo xtask test`: the whole pipeline CI runs. Lint and unit tests, then the enforcement
//! tests on the host (fallback mode: the host kernel refuses BPF LSM) and in VMs booting
//! Debian kernels with BPF LSM on (and once off). Ends with `total: N passed, M failed`.

use std::{
    process::{Command, ExitCode},
    time::Duration,
};

use anyhow::{bail, Result};
use clap::Args;

use crate::{
    integration::{self, Settings, Suite},
    kernels::{self, Series},
    libtest::{self, Counts},
    postgres, setup, util,
};

/// How long the unit tests may take.
const UNIT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Options of `cargo xtask test`.
#[derive(Args)]
pub struct Options {
    #[command(flatten)]
    runs: crate::runs::Runs,
    /// Only VM runs on these kernel series (repeatable).
    #[arg(long = "kernel")]
    kernels: Vec<Series>,
    /// Skip `cargo fmt --check` and clippy.
    #[arg(long)]
    skip_lint: bool,
    /// Only integration tests whose name contains this (passed to the test binary).
    #[arg(long)]
    filter: Option<String>,
    /// Kill an integration run (the host run or one VM) after this many seconds. A hang is
    /// caught long before by the guest's lockup reports and the 600 s silence limit; this
    /// bounds a run that is merely slow (the 5.10 VM stage takes about 700 s on 2 cores).
    #[arg(long, default_value_t = 1500)]
    timeout: u64,
}

/// Counts and failures gathered stage by stage.
#[derive(Default)]
struct Report {
    counts: Counts,
    failures: Vec<String>,
}

impl Report {
    /// Runs one stage under a timed heading; its error is recorded, not propagated.
    fn stage<T>(&mut self, title: &str, f: impl FnOnce() -> Result<T>) -> Option<T> {
        let start = util::heading(title);
        let result = f();
        util::done(title, start, result.is_ok());
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                println!("xtask: {title}: {e:#}");
                self.failures.push(format!("{title}: {e:#}"));
                None
            }
        }
    }

    /// A stage that runs tests: their counts are kept even when the run failed.
    fn tests(&mut self, title: &str, f: impl FnOnce() -> Result<libtest::Run>) {
        let mut counts = None;
        self.stage(title, || {
            let run = f()?;
            counts = Some(run.counts);
            match run.failure {
                Some(why) => bail!(why),
                None => Ok(()),
            }
        });
        self.counts += counts.unwrap_or_default();
    }

    /// Prints the failures and the closing total; the exit code follows.
    fn finish(self) -> ExitCode {
        println!();
        for failure in &self.failures {
            println!("FAILED: {failure}");
        }
        let mut c = self.counts;
        if c.ignored > 0 {
            println!("({} ignored)", c.ignored);
        }
        // Lint, build or boot failures are not test failures, but must not read as success.
        c.failed = c.failed.max(self.failures.len() as u64);
        // CI reads this line: it must stay the last one, in exactly this form.
        println!("total: {} passed, {} failed", c.passed, c.failed);
        if self.failures.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }
}

/// Runs the pipeline; the exit code is non-zero when any stage failed.
pub fn run(opts: &Options) -> Result<ExitCode> {
    let mut report = Report::default();
    let vms = vm_matrix(opts);
    let series: Vec<Series> = Series::ALL
        .into_iter()
        .filter(|s| vms.iter().any(|(v, _)| v == s))
        .collect();
    let ready = report.stage("setup", || {
        setup::run()?;
        kernels::run(&series)
    });
    if ready.is_none() {
        return Ok(report.finish());
    }
    if !opts.skip_lint {
        report.stage("rustfmt", || cargo(&["fmt", "--all", "--", "--check"]));
        let clippy = [
            "clippy",
            "--workspace",
            "--exclude",
            "agent-ebpf",
            "--all-targets",
        ];
        report.stage("clippy", || {
            cargo(&[&clippy[..], &["--", "-D", "warnings"]].concat())
        });
    }
    // The store tests and the approval walk-through also run on PostgreSQL: a throw-away
    // server lives until the host runs are done. Required, so that nothing skips for want of
    // it (a failed start fails its stage and every PostgreSQL test).
    let pg = report.stage("start PostgreSQL", postgres::Postgres::start);
    let mut pg_env = vec![("COUNTERSIGN_REQUIRE_POSTGRES".to_owned(), "1".to_owned())];
    if let Some(pg) = &pg {
        pg_env.push(("COUNTERSIGN_TEST_POSTGRES".to_owned(), pg.url().to_owned()));
    }
    report.tests("unit tests", || {
        let mut cargo = Command::new("cargo");
        cargo.args([
            "test",
            "--workspace",
            "--exclude",
            "agent-ebpf",
            "--exclude",
            "tests",
        ]);
        cargo.envs(pg_env.iter().cloned());
        libtest::run(&mut cargo, "", UNIT_TIMEOUT)
    });
    let Some(bins) = report.stage(
        "build the agent and the integration tests",
        integration::build,
    ) else {
        return Ok(report.finish());
    };
    let settings = Settings {
        filter: opts.filter.clone(),
        timeout: Duration::from_secs(opts.timeout),
        env: Vec::new(),
        nocapture: false,
    };
    if opts.runs.host() {
        for suite in [Suite::Enforcement, Suite::Approvals] {
            report.tests(
                &format!("{} tests on the host (fallback mode)", suite.name()),
                || integration::host(&bins, &settings, suite, &pg_env),
            );
        }
    }
    for (series, bpf_lsm) in vms {
        let mode = if bpf_lsm { "lsm" } else { "fallback" };
        let suites = vm_suites(series, bpf_lsm);
        let names: Vec<&str> = suites.iter().map(|s| s.name()).collect();
        report.tests(
            &format!(
                "{} tests in a VM: Linux {series}, {mode} mode",
                names.join(" + ")
            ),
            || integration::in_vm(&bins, &settings, series, bpf_lsm, &suites).map(|v| v.run),
        );
    }
    Ok(report.finish())
}

fn cargo(args: &[&str]) -> Result<()> {
    util::run(Command::new("cargo").args(args))
}

/// The suites of one VM run. The approval loop is kernel-independent above the grant map,
/// so it runs on the oldest and the newest kernel in LSM mode (the host covers fallback);
/// enforcement runs everywhere.
fn vm_suites(series: Series, bpf_lsm: bool) -> Vec<Suite> {
    if bpf_lsm && matches!(series, Series::V5_10 | Series::V6_12) {
        vec![Suite::Enforcement, Suite::Approvals]
    } else {
        vec![Suite::Enforcement]
    }
}

/// The VM runs `opts` asks for (none with `--host-only`).
fn vm_matrix(opts: &Options) -> Vec<(Series, bool)> {
    if !opts.runs.vm() {
        return Vec::new();
    }
    integration::vm_matrix(&opts.kernels)
}
