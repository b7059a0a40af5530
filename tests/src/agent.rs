//! The daemon under test: `countersign-agent run` as a child process with private
//! directories, and the CLI calls the tests make against it.

use std::{
    fs::{self, OpenOptions},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    thread,
    time::{Duration, Instant},
};

use crate::{
    env::{Mode, TestEnv},
    events::EventLog,
    outcome::Outcome,
    process::OutputDir,
};

/// Longest wait for the daemon to exit after SIGTERM.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// The directories one daemon works with; private to one test.
#[derive(Clone, Debug)]
pub struct AgentDirs {
    pub policy: PathBuf,
    pub state: PathBuf,
    pub run: PathBuf,
    pub bpffs: PathBuf,
}

/// One daemon, started and stopped by one test. Its panics do not repeat the daemon's logs:
/// the [`crate::TestBed`] drop guard prints them once for any failure.
#[derive(Debug)]
pub struct Agent {
    env: TestEnv,
    dirs: AgentDirs,
    logs: PathBuf,
    cli: OutputDir,
    daemon: Option<Child>,
    /// Daemon starts so far (each start logs into its own files).
    starts: u32,
    /// Extra options of `run` (the control-plane link).
    extra: Vec<String>,
}

impl Agent {
    /// Nothing is started; `base` receives the state, run and log directories.
    pub fn new(env: &TestEnv, base: &Path, bpffs: PathBuf) -> Self {
        let dirs = AgentDirs {
            policy: base.join("policy.yaml"),
            state: base.join("state"),
            run: base.join("run"),
            bpffs,
        };
        let logs = base.join("daemon");
        Self {
            env: env.clone(),
            dirs,
            cli: OutputDir::new(base.join("cli")),
            logs,
            daemon: None,
            starts: 0,
            extra: Vec::new(),
        }
    }

    /// Options every later `start` passes to `run` (e.g. the control-plane link).
    pub fn set_run_options(&mut self, options: Vec<String>) {
        self.extra = options;
    }

    /// The agent socket of this daemon (for `countersign exec` and friends).
    pub fn agent_socket(&self) -> PathBuf {
        self.dirs.run.join("agent-api.sock")
    }

    pub fn dirs(&self) -> &AgentDirs {
        &self.dirs
    }

    /// The event log of this daemon's state directory.
    pub fn events(&self) -> EventLog {
        EventLog::new(&self.dirs.state.join("events.jsonl"))
    }

    /// Pid of the running daemon.
    pub fn pid(&self) -> Option<u32> {
        self.daemon.as_ref().map(Child::id)
    }

    /// Starts `run` on the policy file and waits until `status` succeeds, then checks that
    /// `status --json` reports the expected mode.
    pub fn start(&mut self) {
        assert!(self.daemon.is_none(), "the daemon is already running");
        fs::create_dir_all(&self.logs).unwrap_or_else(|e| panic!("cannot create log dir: {e}"));
        self.starts += 1;
        let d = &self.dirs;
        let mut cmd = Command::new(&self.env.agent_bin);
        cmd.arg("run")
            .arg("--policy")
            .arg(&d.policy)
            .arg("--state-dir")
            .arg(&d.state);
        cmd.arg("--run-dir")
            .arg(&d.run)
            .arg("--bpffs")
            .arg(&d.bpffs);
        cmd.args(["--mode", &self.env.agent_mode]);
        // The tests attack as root on purpose, in both modes; the default (refuse root
        // sessions in fallback mode) has a test of its own, which sets it explicitly.
        if !self.extra.iter().any(|a| a == "--root-agents") {
            cmd.args(["--root-agents", "allow"]);
        }
        cmd.args(&self.extra);
        cmd.env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        );
        cmd.env("NO_COLOR", "1"); // the log goes to a file that people read
        cmd.stdin(Stdio::null())
            .stdout(self.log_file("stdout"))
            .stderr(self.log_file("stderr"));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the daemon: {e}"));
        eprintln!(
            "daemon start #{} (pid {}): {}",
            self.starts,
            child.id(),
            crate::process::describe(&cmd)
        );
        self.daemon = Some(child);
        self.wait_ready();
        self.assert_mode(self.env.expect_mode);
    }

    fn log_file(&self, stream: &str) -> fs::File {
        let path = self.logs.join(format!("{}.{stream}", self.starts));
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()))
    }

    fn wait_ready(&mut self) {
        let started = Instant::now();
        loop {
            if let Some(status) = self
                .daemon
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.daemon = None;
                panic!("the daemon exited ({status}) before it was ready");
            }
            let status = self.cli(&["status", "--run-dir", &self.run_dir()]);
            if status.status.success() {
                eprintln!("daemon ready after {:?}", started.elapsed());
                self.print_load_time();
                return;
            }
            if started.elapsed() > self.env.ready_timeout {
                panic!(
                    "the daemon was not ready after {:?} ({}); last status: {status}",
                    self.env.ready_timeout,
                    crate::env::READY_TIMEOUT
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Echoes the daemon's "kernel programs loaded" line: most of a start is the verifier,
    /// and a test run's length follows it.
    fn print_load_time(&self) {
        let log = fs::read_to_string(self.logs.join(format!("{}.stderr", self.starts)));
        for line in log.unwrap_or_default().lines() {
            if line.contains("kernel programs loaded") {
                eprintln!("  {line}");
            }
        }
    }

    /// `status --json` as JSON.
    pub fn status_json(&self) -> serde_json::Value {
        let out = self.cli(&["status", "--json", "--run-dir", &self.run_dir()]);
        assert!(out.status.success(), "status --json failed: {out}");
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("status --json is not JSON ({e}): {out}"))
    }

    /// Panics unless `status --json` reports `mode`.
    pub fn assert_mode(&self, mode: Mode) {
        let status = self.status_json();
        assert_eq!(
            status.get("mode").and_then(|m| m.as_str()),
            Some(mode.as_str()),
            "status --json must report mode {mode} (COUNTERSIGN_EXPECT_MODE, {} run): {status}",
            self.env.run_env
        );
        // It says what holds and what does not, in this mode: exec and connect rules are
        // enforced; what a root agent can do to the enforcer is refused by the LSM guards,
        // and only detected (the caller killed on entry) in fallback mode.
        let state = |name: &str| protection_state(&status, name);
        assert_eq!(
            (
                state("exec_rules").as_deref(),
                state("connect_rules").as_deref(),
                state("enforcer_tamper_by_root").as_deref()
            ),
            (
                Some("enforced"),
                Some("enforced"),
                Some(match mode {
                    Mode::Lsm => "enforced",
                    Mode::Fallback => "detected",
                })
            ),
            "status --json must list the protections of mode {mode}: {status}"
        );
    }

    /// The state (`enforced`, `detected`, `absent`) `status --json` gives protection `name`;
    /// panics when it is not listed.
    pub fn protection(&self, name: &str) -> String {
        let status = self.status_json();
        protection_state(&status, name).unwrap_or_else(|| panic!("no protection {name}: {status}"))
    }

    /// Sends SIGTERM and waits for the daemon to exit; returns its exit status.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self
            .daemon
            .take()
            .unwrap_or_else(|| panic!("the daemon is not running"));
        // SAFETY: plain kill(2) of the daemon this test started (and has not reaped yet).
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("the daemon ignored SIGTERM for {STOP_TIMEOUT:?}");
                }
            }
        }
    }

    /// Kills the daemon with SIGKILL, as the OOM killer would, and reaps it.
    pub fn kill(&mut self) {
        let mut child = self
            .daemon
            .take()
            .unwrap_or_else(|| panic!("the daemon is not running"));
        child.kill().expect("SIGKILL the daemon");
        child.wait().expect("reap the daemon");
    }

    /// Sends `signal` to the running daemon (e.g. SIGHUP to reload).
    pub fn signal(&self, signal: i32) {
        let pid = self
            .pid()
            .unwrap_or_else(|| panic!("the daemon is not running"));
        // SAFETY: plain kill(2) of the daemon this test started (and has not reaped yet).
        let rc = unsafe { libc::kill(pid as i32, signal) };
        assert_eq!(
            rc,
            0,
            "kill({pid}, {signal}): {}",
            std::io::Error::last_os_error()
        );
    }

    /// `reload`, which must succeed.
    pub fn reload(&self) {
        let out = self.cli(&["reload", "--run-dir", &self.run_dir()]);
        assert!(out.status.success(), "reload failed: {out}");
    }

    /// Installs a grant for `agent` and returns what `grant` printed (the grant id).
    pub fn grant(&self, agent: &str, fingerprint: &str, uses: u32, ttl: &str) -> String {
        self.grant_in(agent, None, fingerprint, uses, ttl)
    }

    /// [`Self::grant`], limited to one session of the group when `session` is given.
    pub fn grant_in(
        &self,
        agent: &str,
        session: Option<&str>,
        fingerprint: &str,
        uses: u32,
        ttl: &str,
    ) -> String {
        let out = self.try_grant(agent, session, fingerprint, uses, ttl);
        assert!(out.status.success(), "grant failed: {out}");
        out.stdout.trim().to_string()
    }

    /// `grant …` as [`Self::grant_in`] runs it, whatever its outcome.
    pub fn try_grant(
        &self,
        agent: &str,
        session: Option<&str>,
        fingerprint: &str,
        uses: u32,
        ttl: &str,
    ) -> Outcome {
        let uses = uses.to_string();
        let run_dir = self.run_dir();
        let mut args = vec![
            "grant",
            "--run-dir",
            &run_dir,
            "--agent",
            agent,
            "--fingerprint",
            fingerprint,
            "--uses",
            &uses,
            "--ttl",
            ttl,
        ];
        if let Some(s) = session {
            args.extend(["--session", s]);
        }
        self.cli(&args)
    }

    /// `unload --bpffs DIR`.
    pub fn unload(&self) -> Outcome {
        let bpffs = self.dirs.bpffs.to_string_lossy().into_owned();
        self.cli(&["unload", "--bpffs", &bpffs])
    }

    /// Runs `countersign-agent ARGS…` (outside every agent cgroup) to its end.
    pub fn cli(&self, args: &[&str]) -> Outcome {
        self.cli_in(args, None)
    }

    /// Like [`Self::cli`], in the working directory `cwd`.
    pub fn cli_in(&self, args: &[&str], cwd: Option<&Path>) -> Outcome {
        let mut cmd = Command::new(&self.env.agent_bin);
        cmd.args(args);
        if let Some(dir) = cwd {
            cmd.current_dir(dir);
        }
        self.cli.run(cmd, args.first().copied().unwrap_or("agent"))
    }

    /// A `countersign-agent` command line to start as a test process (e.g. `launch`).
    pub fn command(&self) -> Command {
        Command::new(&self.env.agent_bin)
    }

    pub fn run_dir(&self) -> String {
        self.dirs.run.to_string_lossy().into_owned()
    }

    /// Stops the daemon (SIGTERM, then SIGKILL), unloads and checks the pins are gone.
    /// Problems are returned, not panicked on: this runs during cleanup.
    pub fn shut_down(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(mut child) = self.daemon.take() {
            match child.try_wait() {
                // A test can pass while the daemon died under it; that must not go unseen.
                Ok(Some(status)) => problems.push(format!(
                    "the daemon exited on its own during the test ({status})"
                )),
                _ => terminate(&mut child, &mut problems),
            }
        }
        if self.dirs.bpffs.exists() {
            // Not `self.unload()`: that panics on trouble, and a panic while the test is
            // already unwinding would abort every remaining test.
            let unload = Command::new(&self.env.agent_bin)
                .arg("unload")
                .arg("--bpffs")
                .arg(&self.dirs.bpffs)
                .stdin(Stdio::null())
                .output();
            match unload {
                Ok(out) if out.status.success() => {}
                Ok(out) => problems.push(format!(
                    "unload failed ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                )),
                Err(e) => problems.push(format!("cannot run unload: {e}")),
            }
            match fs::read_dir(&self.dirs.bpffs).map(|d| d.count()) {
                Ok(0) => {
                    let _ = fs::remove_dir(&self.dirs.bpffs);
                }
                Ok(n) => problems.push(format!(
                    "{n} pins left in {} after unload",
                    self.dirs.bpffs.display()
                )),
                Err(_) => {}
            }
        }
        problems
    }

    /// The daemon's notable stderr lines and its end, and the end of the event log, for
    /// failure messages.
    pub fn diagnostics(&self) -> String {
        let mut out = String::new();
        for start in 1..=self.starts {
            let path = self.logs.join(format!("{start}.stderr"));
            let text = fs::read_to_string(&path).unwrap_or_default();
            out.push_str(&format!(
                "--- daemon start #{start}, stderr ({}):\n",
                path.display()
            ));
            out.push_str(&crate::diagnostics::stderr_summary(&text));
        }
        let events = self.events();
        out.push_str(&format!("--- last events ({}):\n", events.path().display()));
        for l in events.tail(20) {
            out.push_str(&l);
            out.push('\n');
        }
        out
    }
}

/// SIGTERM, up to 10 s for the daemon to exit, then SIGKILL.
fn terminate(child: &mut Child, problems: &mut Vec<String>) {
    // SAFETY: plain kill(2) of the daemon this test started and has not reaped yet.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    if matches!(child.try_wait(), Ok(None)) {
        problems.push("the daemon ignored SIGTERM for 10 s: killed".to_string());
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// The state of protection `name` in a `status --json` answer.
fn protection_state(status: &serde_json::Value, name: &str) -> Option<String> {
    status["protections"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["name"] == name))
        .and_then(|p| p["state"].as_str())
        .map(str::to_owned)
}
