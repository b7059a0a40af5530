//! The integration tests (`enforcement`: the kernel side; `approvals`: the whole loop with
//! the control plane): building their binaries and running them on the host or in a VM, with
//! the environment the `tests` crate expects.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::Result;

use crate::{artifacts, initramfs, kernels::Series, libtest, util, vm::Vm};

/// The binaries an integration run needs.
pub struct Binaries {
    agent: PathBuf,
    server: PathBuf,
    cli: PathBuf,
    probe: PathBuf,
    enforcement: PathBuf,
    approvals: PathBuf,
}

/// One suite of the `tests` crate's test binaries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suite {
    /// Kernel enforcement: the daemon alone.
    Enforcement,
    /// The approval loop: daemon, server and CLI (but its `views` module).
    Approvals,
    /// What approvers read: the adversarial argv corpus, refused by the kernel, through the
    /// CLI, a local Slack and a local Teams (the `approvals` binary's `views` module).
    Views,
}

/// The `approvals` module of the approver views.
const VIEWS: &str = "views::";

impl Suite {
    /// The suite's name (also its test binary's file name in the VM's `/bin`).
    pub fn name(self) -> &'static str {
        match self {
            Suite::Enforcement => "enforcement",
            Suite::Approvals => "approvals",
            Suite::Views => "approver views",
        }
    }

    /// The test binary's file name in the VM's `/bin`.
    fn file(self) -> &'static str {
        match self {
            Suite::Enforcement => "enforcement",
            Suite::Approvals | Suite::Views => "approvals",
        }
    }

    fn binary(self, bins: &Binaries) -> &Path {
        match self {
            Suite::Enforcement => &bins.enforcement,
            Suite::Approvals | Suite::Views => &bins.approvals,
        }
    }

    /// Which of the binary's tests this suite runs, given the run's filter: None when none
    /// (a filter that names no approver view leaves that suite out).
    fn selection(self, filter: Option<&str>) -> Option<Vec<String>> {
        let mut args: Vec<String> = filter.map(str::to_owned).into_iter().collect();
        match self {
            Suite::Enforcement => {}
            Suite::Approvals => args.extend(["--skip".to_owned(), VIEWS.to_owned()]),
            Suite::Views => match filter {
                None => args.push(VIEWS.to_owned()),
                Some(f) if f.contains("views") || f.contains("escaped") => {}
                Some(_) => return None,
            },
        }
        Some(args)
    }
}

/// Builds `countersign-agent`, `countersign-server`, `countersign`, `cs-probe` and the test
/// binaries.
pub fn build() -> Result<Binaries> {
    let agent = artifacts::cargo_build(&["build", "-p", "agent", "--bins"])?;
    let server = artifacts::cargo_build(&["build", "-p", "control-plane", "--bins"])?;
    let cli = artifacts::cargo_build(&["build", "-p", "cli", "--bins"])?;
    let probe = artifacts::cargo_build(&["build", "-p", "tests", "--bins"])?;
    let tests = artifacts::cargo_build(&["test", "-p", "tests", "--no-run"])?;
    Ok(Binaries {
        agent: artifacts::find(&agent, "countersign-agent", "bin")?,
        server: artifacts::find(&server, "countersign-server", "bin")?,
        cli: artifacts::find(&cli, "countersign", "bin")?,
        probe: artifacts::find(&probe, "cs-probe", "bin")?,
        enforcement: artifacts::find(&tests, "enforcement", "test")?,
        approvals: artifacts::find(&tests, "approvals", "test")?,
    })
}

/// Settings shared by every run.
pub struct Settings {
    /// Only tests whose name contains this.
    pub filter: Option<String>,
    /// Kill the run after this long.
    pub timeout: Duration,
    /// More variables for the tests (e.g. the stress tests' cycle counts).
    pub env: Vec<(String, String)>,
    /// Show the tests' output as it comes (`--nocapture`): long tests print progress.
    pub nocapture: bool,
}

/// (kernel, BPF LSM on) pairs of the VM runs, restricted to `kernels` unless it is empty;
/// 6.1 also runs without BPF LSM to test the fallback.
///
/// By default the LSM mode runs on the oldest and the newest series (5.10, 6.12) and the
/// fallback boot on 6.1; `--kernel 6.1` adds 6.1's LSM run. (Since the LSM guards, every
/// daemon start loads 25 LSM programs and every file operation in the guest passes them: an
/// LSM run takes 1100 to 1200 s under emulation, and a third one would take the whole run
/// past an hour.)
pub fn vm_matrix(kernels: &[Series]) -> Vec<(Series, bool)> {
    [
        (Series::V5_10, true),
        (Series::V6_1, true),
        (Series::V6_12, true),
        (Series::V6_1, false),
    ]
    .into_iter()
    .filter(|(s, lsm)| {
        if kernels.is_empty() {
            !(*s == Series::V6_1 && *lsm)
        } else {
            kernels.contains(s)
        }
    })
    .collect()
}

/// One VM run of integration tests.
pub struct VmRun {
    /// Its tests and verdict.
    pub run: libtest::Run,
    /// The guest stopped making progress (see [`crate::vm::Outcome::hung`]).
    pub hung: bool,
}

impl Settings {
    /// The test binary's arguments for `suite`; None when the filter leaves it nothing.
    fn args(&self, suite: Suite) -> Option<Vec<String>> {
        let mut args = vec!["--test-threads=1".to_owned(), "--color=never".to_owned()];
        if self.nocapture {
            args.push("--nocapture".to_owned());
        }
        args.extend(suite.selection(self.filter.as_deref())?);
        Some(args)
    }
}

/// The tests' environment: what xtask decides, plus every other `COUNTERSIGN_*` variable
/// of xtask's own environment (tuning knobs such as `COUNTERSIGN_READY_TIMEOUT`), so a knob
/// set for the host run reaches the VMs too.
fn env(bins: [&str; 4], mode: &str, env: &str) -> Vec<(String, String)> {
    let [agent, server, cli, probe] = bins;
    let ours = [
        ("COUNTERSIGN_AGENT_BIN", agent),
        ("COUNTERSIGN_SERVER_BIN", server),
        ("COUNTERSIGN_CLI_BIN", cli),
        ("COUNTERSIGN_PROBE_BIN", probe),
        ("COUNTERSIGN_EXPECT_MODE", mode),
        ("COUNTERSIGN_ENV", env),
        ("RUST_BACKTRACE", "1"),
    ];
    let mut vars: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("COUNTERSIGN_") && !ours.iter().any(|(o, _)| o == k))
        .collect();
    vars.extend(ours.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())));
    vars
}

/// On this machine, whose kernel refuses BPF LSM: the agent must use its fallback.
/// `extra_env` adds to the tests' environment (the PostgreSQL server of the run).
pub fn host(
    bins: &Binaries,
    settings: &Settings,
    suite: Suite,
    extra_env: &[(String, String)],
) -> Result<libtest::Run> {
    let paths = [&bins.agent, &bins.server, &bins.cli, &bins.probe].map(|p| p.to_string_lossy());
    let Some(args) = settings.args(suite) else {
        println!("{}: no test matches the filter", suite.name());
        return Ok(libtest::Run::default());
    };
    let mut cmd = Command::new(suite.binary(bins));
    cmd.args(args)
        .envs(env(
            [&paths[0], &paths[1], &paths[2], &paths[3]].map(|p| &**p),
            "fallback",
            "host",
        ))
        .envs(extra_env.iter().cloned())
        .envs(settings.env.iter().cloned());
    libtest::run(&mut cmd, "[host] ", settings.timeout)
}

/// In a VM booting `series`, with BPF LSM on (`lsm` mode expected) or off (`fallback`).
pub fn in_vm(
    bins: &Binaries,
    settings: &Settings,
    series: Series,
    bpf_lsm: bool,
    suites: &[Suite],
) -> Result<VmRun> {
    let mode = if bpf_lsm { "lsm" } else { "fallback" };
    let cmd = vm_command(suites, settings);
    let mut binaries = vec![
        (bins.agent.clone(), "countersign-agent".to_owned()),
        (bins.server.clone(), "countersign-server".to_owned()),
        (bins.cli.clone(), "countersign".to_owned()),
        (bins.probe.clone(), "cs-probe".to_owned()),
    ];
    binaries.extend(
        suites
            .iter()
            .map(|s| (s.binary(bins).to_owned(), s.file().to_owned())),
    );
    // Host tools the tests use where busybox has none: `ip` (busybox's lacks `netns`), and
    // btrfs-progs for the file identity test's btrfs subvolume.
    for tool in ["ip", "mkfs.btrfs", "btrfs"] {
        if let Ok(path) =
            util::output(Command::new("sh").args(["-c", &format!("command -v {tool}")]))
        {
            binaries.push((PathBuf::from(path.trim()), tool.to_owned()));
        }
    }
    let mut vars = env(
        [
            "/bin/countersign-agent",
            "/bin/countersign-server",
            "/bin/countersign",
            "/bin/cs-probe",
        ],
        mode,
        "vm",
    );
    vars.extend(settings.env.iter().cloned());
    let spec = initramfs::Spec {
        bins: binaries,
        env: vars,
        cmd,
    };
    let outcome = Vm {
        series,
        bpf_lsm,
        spec,
        timeout: settings.timeout,
    }
    .run()?;
    Ok(VmRun {
        run: libtest::Run {
            counts: libtest::sum(&outcome.lines),
            failure: outcome.failure,
        },
        hung: outcome.hung,
    })
}

/// The VM's one command: every suite in turn (all run even when one fails), failing when any
/// failed.
fn vm_command(suites: &[Suite], settings: &Settings) -> Vec<String> {
    let mut script = String::from("rc=0");
    for suite in suites {
        let Some(args) = settings.args(*suite) else {
            continue;
        };
        let quoted: Vec<String> = args
            .iter()
            .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
            .collect();
        script.push_str(&format!(
            "; /bin/{} {} || rc=1",
            suite.file(),
            quoted.join(" ")
        ));
    }
    script.push_str("; exit $rc");
    vec!["/bin/sh".into(), "-c".into(), script]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(filter: Option<&str>) -> Settings {
        Settings {
            filter: filter.map(str::to_owned),
            timeout: Duration::from_secs(1),
            env: Vec::new(),
            nocapture: false,
        }
    }

    #[test]
    fn vm_command_runs_every_suite_and_keeps_failures() {
        let cmd = vm_command(
            &[Suite::Enforcement, Suite::Approvals],
            &settings(Some("it's")),
        );
        assert_eq!(
            cmd[2],
            "rc=0; /bin/enforcement '--test-threads=1' '--color=never' 'it'\\''s' || rc=1; \
             /bin/approvals '--test-threads=1' '--color=never' 'it'\\''s' '--skip' 'views::' \
             || rc=1; exit $rc"
        );
    }

    /// The approver views run as their own suite, and only there.
    #[test]
    fn the_approver_views_are_a_suite_of_their_own() {
        let s = settings(None);
        assert_eq!(
            s.args(Suite::Views)
                .expect("views")
                .last()
                .map(String::as_str),
            Some("views::")
        );
        assert!(s
            .args(Suite::Approvals)
            .expect("approvals")
            .ends_with(&["--skip".to_owned(), "views::".to_owned()]));
        assert_eq!(settings(Some("connect")).args(Suite::Views), None);
        assert!(settings(Some("views::the")).args(Suite::Views).is_some());
    }
}
