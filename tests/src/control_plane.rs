//! The control plane under test: `countersign-server` as a child process on a loopback port
//! with its own data directory, development certificates made by `countersign certs`, a people
//! file, and the `countersign` CLI run as one of those people.

use std::{
    fs::{self, OpenOptions},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{env::TestEnv, outcome::Outcome, process::OutputDir};

/// Host name in the daemon's client certificate (what approvers see as `host`).
pub const HOST: &str = "test-host";
/// Longest wait for the server to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for something to show up on the server (a request, a decision...).
pub const SERVER_TIMEOUT: Duration = Duration::from_secs(30);

/// People of every test: `alice` and `bob` approve for `sre`, `carol` is a security admin and
/// auditor, `dave` approves for another group, `erin` has no role at all.
pub const PEOPLE: &str = "\
default_approvers: [sre]
people:
  - name: alice
    groups: [sre]
    roles: [approver]
  - name: bob
    groups: [sre]
    roles: [approver]
  - name: carol
    groups: [security]
    roles: [admin, auditor]
  - name: dave
    groups: [dba]
    roles: [approver]
  - name: erin
    groups: []
    roles: []
";

/// Which store the server uses.
#[derive(Clone, Debug)]
pub enum Database {
    /// A file in the data directory.
    Sqlite,
    /// A fresh database on the PostgreSQL server of this URL (`postgres://…/postgres`).
    Postgres(String),
}

/// One `countersign-server`, started and stopped by one test.
#[derive(Debug)]
pub struct ControlPlane {
    server_bin: PathBuf,
    cli_bin: PathBuf,
    dir: PathBuf,
    port: u16,
    database: Database,
    child: Option<Child>,
    starts: u32,
    outputs: OutputDir,
}

impl ControlPlane {
    /// Creates the data directory, certificates and people file under `base`; starts nothing.
    pub fn new(env: &TestEnv, base: &Path, database: Database) -> Self {
        let (server_bin, cli_bin) = env.control_plane_bins();
        let dir = base.join("server");
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        fs::write(dir.join("people.yaml"), PEOPLE)
            .unwrap_or_else(|e| panic!("cannot write the people file: {e}"));
        let cp = Self {
            server_bin,
            cli_bin,
            port: free_port(),
            database,
            child: None,
            starts: 0,
            outputs: OutputDir::new(base.join("server-cli")),
            dir,
        };
        let certs = cp.certs_dir();
        let certs = certs.to_string_lossy();
        cp.run_cli(&["certs", "init", "--dir", &certs])
            .assert_success();
        cp.run_cli(&["certs", "host", HOST, "--dir", &certs])
            .assert_success();
        for person in ["alice", "bob", "carol", "dave", "erin"] {
            cp.run_cli(&["certs", "person", person, "--dir", &certs])
                .assert_success();
        }
        cp
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn data_dir(&self) -> &Path {
        &self.dir
    }

    pub fn certs_dir(&self) -> PathBuf {
        self.dir.join("certs")
    }

    fn cert(&self, stem: &str) -> String {
        self.certs_dir()
            .join(format!("{stem}.pem"))
            .to_string_lossy()
            .into_owned()
    }

    /// The options that connect `countersign-agent run` to this server as [`HOST`].
    pub fn agent_args(&self) -> Vec<String> {
        vec![
            "--server".into(),
            self.url(),
            "--tls-ca".into(),
            self.cert("ca"),
            "--tls-cert".into(),
            self.cert(&format!("host-{HOST}")),
            "--tls-key".into(),
            self.cert(&format!("host-{HOST}-key")),
        ]
    }

    /// The public key that verifies the audit trail's checkpoints.
    pub fn audit_key(&self) -> String {
        self.dir
            .join("audit-key.pub")
            .to_string_lossy()
            .into_owned()
    }

    /// Starts the server and waits until its port accepts connections.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "the server is already running");
        self.starts += 1;
        let mut cmd = Command::new(&self.server_bin);
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(&self.dir)
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--people")
            .arg(self.dir.join("people.yaml"))
            .args(["--tls-ca", &self.cert("ca")])
            .args(["--tls-cert", &self.cert("server")])
            .args(["--tls-key", &self.cert("server-key")]);
        if let Database::Postgres(url) = &self.database {
            cmd.arg("--database").arg(url);
        }
        cmd.env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        )
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(self.log_file("stdout"))
        .stderr(self.log_file("stderr"));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start countersign-server: {e}"));
        eprintln!(
            "server start #{} (pid {}): {}",
            self.starts,
            child.id(),
            crate::process::describe(&cmd)
        );
        self.child = Some(child);
        let started = Instant::now();
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                panic!(
                    "countersign-server exited ({status}) before it was ready\n{}",
                    self.diagnostics()
                );
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                eprintln!("server ready after {:?}", started.elapsed());
                return;
            }
            assert!(
                started.elapsed() < READY_TIMEOUT,
                "countersign-server did not listen within {READY_TIMEOUT:?}\n{}",
                self.diagnostics()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (SIGTERM, then SIGKILL after 10 s).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SAFETY: plain kill(2) of the server this test started (and has not reaped yet).
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    fn log_file(&self, stream: &str) -> fs::File {
        let path = self.dir.join(format!("server.{}.{stream}", self.starts));
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()))
    }

    fn run_cli(&self, args: &[&str]) -> Outcome {
        let mut cmd = Command::new(&self.cli_bin);
        cmd.args(args);
        self.outputs
            .run(cmd, args.first().copied().unwrap_or("cli"))
    }

    /// `countersign ARGS…` authenticated as `person` (a person certificate of the test CA).
    pub fn cli(&self, person: &str, args: &[&str]) -> Outcome {
        let mut cmd = self.person_command(person);
        cmd.args(args);
        let tag = format!("{person}-{}", args.first().copied().unwrap_or("cli"));
        self.outputs.run(cmd, &tag)
    }

    /// A `countersign` command line authenticated as `person`, not started.
    pub fn person_command(&self, person: &str) -> Command {
        let mut cmd = Command::new(&self.cli_bin);
        cmd.args(["--server", &self.url()])
            .args(["--ca", &self.cert("ca")])
            .args(["--cert", &self.cert(&format!("person-{person}"))])
            .args(["--key", &self.cert(&format!("person-{person}-key"))]);
        cmd
    }

    /// `countersign` for an agent process: no credentials, the daemon's agent socket.
    pub fn agent_command(&self, agent_socket: &Path) -> Command {
        let mut cmd = Command::new(&self.cli_bin);
        cmd.env("COUNTERSIGN_AGENT_SOCKET", agent_socket);
        cmd
    }

    /// `countersign pending --json` as `person`.
    pub fn pending(&self, person: &str) -> Vec<Value> {
        let out = self.cli(person, &["pending", "--json"]);
        out.assert_success();
        parse_json_list(&out.stdout)
    }

    /// Waits until `person` sees a pending request for which `pred` holds; returns it.
    pub fn wait_pending(&self, person: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            if let Some(r) = self.pending(person).into_iter().find(|r| pred(r)) {
                eprintln!("pending after {:?}: {r}", started.elapsed());
                return r;
            }
            assert!(
                started.elapsed() < SERVER_TIMEOUT,
                "no pending request {what} for {person} within {SERVER_TIMEOUT:?}\n{}",
                self.diagnostics()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// `countersign show REQ --json` as `person`.
    pub fn show(&self, person: &str, request: &str) -> Value {
        let out = self.cli(person, &["show", request, "--json"]);
        out.assert_success();
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("show --json is not JSON ({e}): {out}"))
    }

    /// The whole audit trail as JSON Lines, exported by the auditor `carol`, parsed.
    pub fn audit(&self) -> Vec<Value> {
        let out = self.cli("carol", &["audit", "export", "--format", "jsonl"]);
        out.assert_success();
        out.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("audit line {l}: {e}")))
            .collect()
    }

    /// The server's logs, for failure messages.
    pub fn diagnostics(&self) -> String {
        let mut out = String::new();
        for start in 1..=self.starts {
            let path = self.dir.join(format!("server.{start}.stderr"));
            let text = fs::read_to_string(&path).unwrap_or_default();
            out.push_str(&format!(
                "--- server start #{start}, stderr ({}):\n",
                path.display()
            ));
            out.push_str(&crate::diagnostics::stderr_summary(&text));
        }
        out
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("{}", self.diagnostics());
        }
        self.stop();
    }
}

/// A JSON array, or JSON objects one per line.
pub fn parse_json_list(text: &str) -> Vec<Value> {
    let text = text.trim();
    if text.starts_with('[') {
        return serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    }
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("cannot find a free port: {e}"))
}
