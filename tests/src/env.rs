//! What the test run was given: the binaries under test and the mode the kernel must be in.
//!
//! `cargo xtask test` sets these variables on the host and in the VMs. A missing variable is a
//! broken test set-up, so it panics with the variable's name rather than skipping anything.

use std::{fmt, path::PathBuf, str::FromStr, time::Duration};

/// Path of `countersign-agent`.
pub const AGENT_BIN: &str = "COUNTERSIGN_AGENT_BIN";
/// Path of `cs-probe` (defaults to the one cargo built next to the test).
pub const PROBE_BIN: &str = "COUNTERSIGN_PROBE_BIN";
/// `lsm` or `fallback`: the mode the agent must pick (and report) on this kernel.
pub const EXPECT_MODE: &str = "COUNTERSIGN_EXPECT_MODE";
/// `host` or `vm`: where the tests run (for messages, and for what only a VM must be able to
/// do: the VM runner brings the tools and kernel modules a test needs).
pub const RUN_ENV: &str = "COUNTERSIGN_ENV";
/// Optional `--mode` given to the daemon (default `auto`: the detection itself is under test).
pub const AGENT_MODE: &str = "COUNTERSIGN_AGENT_MODE";
/// Path of `countersign-server` (needed by the approval tests only).
pub const SERVER_BIN: &str = "COUNTERSIGN_SERVER_BIN";
/// Path of the `countersign` CLI (needed by the approval tests only).
pub const CLI_BIN: &str = "COUNTERSIGN_CLI_BIN";
/// Optional PostgreSQL URL: the approval scenario then also runs on a PostgreSQL store.
pub const POSTGRES_URL: &str = "COUNTERSIGN_TEST_POSTGRES";
/// Optional number of attempts of the argv-rewrite race (default 200).
pub const RACE_ATTEMPTS: &str = "COUNTERSIGN_RACE_ATTEMPTS";
/// Optional number of daemon start → refuse → stop → unload cycles under syscall load
/// (default 4; `cargo xtask stress-attach` sets many more).
pub const ATTACH_CYCLES: &str = "COUNTERSIGN_ATTACH_CYCLES";
/// Optional number of enable/disable cycles of a syscall trace event under load (default 300).
pub const TOGGLE_CYCLES: &str = "COUNTERSIGN_TOGGLE_CYCLES";
/// Refused connects in the flood test (`grants::a_refusal_flood_…`; default 100 000).
pub const FLOOD_CONNECTS: &str = "COUNTERSIGN_FLOOD_CONNECTS";
/// Optional seconds a started daemon has to become ready (default 60; the verifier is slow
/// under software emulation).
pub const READY_TIMEOUT: &str = "COUNTERSIGN_READY_TIMEOUT";

/// The enforcement mode of exec refusals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// BPF LSM: a refused exec fails with EPERM.
    Lsm,
    /// Tracepoints: a refused exec is killed with SIGKILL before the new image runs.
    Fallback,
}

impl Mode {
    /// The name used on the command line, in `status --json` and in events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lsm => "lsm",
            Self::Fallback => "fallback",
        }
    }

    /// The event `outcome` of an enforced exec refusal in this mode.
    pub fn exec_refusal_outcome(self) -> &'static str {
        match self {
            Self::Lsm => "refused",
            Self::Fallback => "killed",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything the environment tells the tests.
#[derive(Clone, Debug)]
pub struct TestEnv {
    pub agent_bin: PathBuf,
    pub probe_bin: PathBuf,
    pub expect_mode: Mode,
    /// `host`, `vm` or `unknown`.
    pub run_env: String,
    /// Value of the daemon's `--mode`.
    pub agent_mode: String,
    pub race_attempts: usize,
    /// How long a started daemon has to become ready.
    pub ready_timeout: Duration,
    /// `countersign-server`, when the run includes the control plane.
    pub server_bin: Option<PathBuf>,
    /// `countersign`, when the run includes the control plane.
    pub cli_bin: Option<PathBuf>,
    /// PostgreSQL server for the store, when the run has one.
    pub postgres: Option<String>,
}

impl TestEnv {
    /// Reads the environment. `default_probe` is cargo's `CARGO_BIN_EXE_cs-probe` of the test
    /// target (used when `COUNTERSIGN_PROBE_BIN` is not set, e.g. a plain `cargo test`).
    pub fn from_env(default_probe: Option<&str>) -> Self {
        let agent_bin = PathBuf::from(required(AGENT_BIN, "path of countersign-agent"));
        let probe_bin = match std::env::var_os(PROBE_BIN) {
            Some(p) => PathBuf::from(p),
            None => PathBuf::from(default_probe.unwrap_or_else(|| {
                panic!("{PROBE_BIN} is not set (path of the cs-probe helper binary)")
            })),
        };
        for (what, path) in [("agent", &agent_bin), ("probe", &probe_bin)] {
            assert!(
                path.is_file(),
                "the {what} binary {} does not exist",
                path.display()
            );
        }
        let expect_mode = match required(EXPECT_MODE, "lsm or fallback").as_str() {
            "lsm" => Mode::Lsm,
            "fallback" => Mode::Fallback,
            other => panic!("{EXPECT_MODE}={other:?}: expected lsm or fallback"),
        };
        let race_attempts = optional(RACE_ATTEMPTS).unwrap_or(200);
        let ready_timeout = Duration::from_secs(optional(READY_TIMEOUT).unwrap_or(60));
        Self {
            agent_bin,
            probe_bin,
            expect_mode,
            run_env: std::env::var(RUN_ENV).unwrap_or_else(|_| "unknown".into()),
            agent_mode: std::env::var(AGENT_MODE).unwrap_or_else(|_| "auto".into()),
            race_attempts,
            ready_timeout,
            server_bin: std::env::var_os(SERVER_BIN).map(PathBuf::from),
            cli_bin: std::env::var_os(CLI_BIN).map(PathBuf::from),
            postgres: std::env::var(POSTGRES_URL).ok().filter(|u| !u.is_empty()),
        }
    }

    /// `countersign-server` and `countersign`; a run without them cannot test approvals, which
    /// is a set-up error, not a reason to skip.
    pub fn control_plane_bins(&self) -> (PathBuf, PathBuf) {
        let get = |bin: &Option<PathBuf>, var: &str| {
            let path = bin.clone().unwrap_or_else(|| {
                panic!("{var} is not set; run the tests through `cargo xtask test`")
            });
            assert!(path.is_file(), "{var}: {} does not exist", path.display());
            path
        };
        (
            get(&self.server_bin, SERVER_BIN),
            get(&self.cli_bin, CLI_BIN),
        )
    }
}

fn required(name: &str, what: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set ({what}); run the tests through `cargo xtask test`")
    })
}

/// A number from an optional variable; a value that is not a number is a set-up error.
pub fn optional<T: FromStr>(name: &str) -> Option<T> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?}: not a number")),
    )
}
