//! The enforcement integration tests: building their binaries and running them on the host
//! or in a VM, with the environment the `tests` crate expects.

use std::{path::PathBuf, process::Command, time::Duration};

use anyhow::Result;

use crate::{artifacts, initramfs, kernels::Series, libtest, util, vm::Vm};

/// The binaries an integration run needs.
pub struct Binaries {
    agent: PathBuf,
    probe: PathBuf,
    enforcement: PathBuf,
}

/// Builds `countersign-agent`, `cs-probe` and the `enforcement` test binary.
pub fn build() -> Result<Binaries> {
    let agent = artifacts::cargo_build(&["build", "-p", "agent", "--bins"])?;
    let probe = artifacts::cargo_build(&["build", "-p", "tests", "--bins"])?;
    let tests = artifacts::cargo_build(&["test", "-p", "tests", "--no-run"])?;
    Ok(Binaries {
        agent: artifacts::find(&agent, "countersign-agent", "bin")?,
        probe: artifacts::find(&probe, "cs-probe", "bin")?,
        enforcement: artifacts::find(&tests, "enforcement", "test")?,
    })
}

/// Settings shared by every run.
pub struct Settings {
    /// Only tests whose name contains this.
    pub filter: Option<String>,
    /// Kill the run after this long.
    pub timeout: Duration,
}

impl Settings {
    fn args(&self) -> Vec<String> {
        let mut args = vec!["--test-threads=1".to_owned(), "--color=never".to_owned()];
        args.extend(self.filter.clone());
        args
    }
}

/// The tests' environment: what xtask decides, plus every other `COUNTERSIGN_*` variable
/// of xtask's own environment (tuning knobs such as `COUNTERSIGN_READY_TIMEOUT`), so a knob
/// set for the host run reaches the VMs too.
fn env(agent: &str, probe: &str, mode: &str, env: &str) -> Vec<(String, String)> {
    let ours = [
        ("COUNTERSIGN_AGENT_BIN", agent),
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
pub fn host(bins: &Binaries, settings: &Settings) -> Result<libtest::Run> {
    let agent = bins.agent.to_string_lossy();
    let probe = bins.probe.to_string_lossy();
    let mut cmd = Command::new(&bins.enforcement);
    cmd.args(settings.args())
        .envs(env(&agent, &probe, "fallback", "host"));
    libtest::run(&mut cmd, "[host] ", settings.timeout)
}

/// In a VM booting `series`, with BPF LSM on (`lsm` mode expected) or off (`fallback`).
pub fn in_vm(
    bins: &Binaries,
    settings: &Settings,
    series: Series,
    bpf_lsm: bool,
) -> Result<libtest::Run> {
    let mode = if bpf_lsm { "lsm" } else { "fallback" };
    let mut cmd = vec!["/bin/enforcement".to_owned()];
    cmd.extend(settings.args());
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
        env: env("/bin/countersign-agent", "/bin/cs-probe", mode, "vm"),
        cmd,
    };
    let outcome = Vm {
        series,
        bpf_lsm,
        spec,
        timeout: settings.timeout,
    }
    .run()?;
    Ok(libtest::Run {
        counts: libtest::sum(&outcome.lines),
        failure: outcome.failure,
    })
}
