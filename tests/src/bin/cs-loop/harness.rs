//! The test harness (`tests` library) as the control-plane benchmarks use it: its environment
//! built from the command line, plus the PostgreSQL databases and extra host certificates the
//! upload runs need. (What cs-bench needs too — the harness's panics as errors, Ctrl-C — is in
//! `tests::bench`.)

use std::{
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
