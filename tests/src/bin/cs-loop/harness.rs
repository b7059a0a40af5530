//! The test harness (`tests` library) as the benchmarks use it: its panics turned into errors,
//! its environment built from the command line, plus the PostgreSQL databases and extra host
//! certificates the upload runs need.

use std::{
    panic::{self, AssertUnwindSafe},
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use tests::env::{Mode, TestEnv};

/// The binaries a run uses.
pub struct Bins {
    /// `countersign-agent` (the approvals run only).
    pub agent: PathBuf,
    pub server: PathBuf,
    pub cli: PathBuf,
}

/// What the harness needs to know; `mode` is forced on the daemon and checked in its status.
pub fn test_env(bins: &Bins, mode: Mode, run_env: &str) -> TestEnv {
    TestEnv {
        agent_bin: bins.agent.clone(),
        // The daemon never runs cs-probe here; the harness only needs a path.
        probe_bin: std::env::current_exe().unwrap_or_default(),
        expect_mode: mode,
        run_env: run_env.to_owned(),
        agent_mode: mode.as_str().to_owned(),
        race_attempts: 0,
        ready_timeout: Duration::from_secs(if run_env == "vm" { 300 } else { 60 }),
        server_bin: Some(bins.server.clone()),
        cli_bin: Some(bins.cli.clone()),
        postgres: None,
    }
}

/// Runs `f`, turning a panic of the harness (written for tests, it panics on trouble) into
/// an error that names `what`.
pub fn guarded<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, String> {
    // The message becomes the error; the default hook would print it (and a backtrace) too.
    let hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    panic::set_hook(hook);
    result.map_err(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default();
        format!("{what}: {msg}")
    })
}

/// Runs `cmd` to its end; its stderr becomes the error.
pub fn run(mut cmd: Command) -> Result<String, String> {
    let what = tests::process::describe(&cmd);
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run `{what}`: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`{what}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `countersign certs host NAME --dir CERTS` for each name.
pub fn host_certs(cli: &Path, certs: &Path, names: &[String]) -> Result<(), String> {
    for name in names {
        let mut cmd = Command::new(cli);
        cmd.args(["certs", "host", name, "--dir"]).arg(certs);
        run(cmd)?;
    }
    Ok(())
}

/// A fresh database `name` on the PostgreSQL server `url` (`postgres://…/postgres`); returns
/// its URL.
pub fn postgres_database(url: &str, name: &str) -> Result<String, String> {
    for sql in [
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("CREATE DATABASE {name}"),
    ] {
        psql(url, &sql)?;
    }
    let base = url.rsplit_once('/').map_or(url, |(b, _)| b);
    Ok(format!("{base}/{name}"))
}

/// Drops the database `name` (after its server stopped using it).
pub fn drop_database(url: &str, name: &str) -> Result<(), String> {
    psql(url, &format!("DROP DATABASE IF EXISTS {name}"))
}

fn psql(url: &str, sql: &str) -> Result<(), String> {
    let mut cmd = Command::new("psql");
    cmd.arg(url)
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-c", sql]);
    run(cmd).map(drop)
}

/// Set by SIGINT/SIGTERM/SIGHUP: the run stops after the current step and cleans up.
static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Ctrl-C ends the run through its normal error path, which stops the daemon and the server
/// and removes the cgroups (the default action would leave them behind).
pub fn install_signal_handlers() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
}

/// An error once a signal asked the run to stop.
pub fn check_interrupted() -> Result<(), String> {
    if INTERRUPTED.load(std::sync::atomic::Ordering::Relaxed) {
        Err("interrupted".into())
    } else {
        Ok(())
    }
}
