//! A local Countersign: `countersign-server` (SQLite, development certificates, a people
//! file) and `countersign-agent` connected to it over mTLS. `cargo xtask up` runs it in the
//! foreground with the defaults; `cargo xtask demo` runs a private one and narrates a story.

use std::{
    fs,
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};

use crate::{artifacts, util};

/// How long the server and the agent have to become ready.
const READY: Duration = Duration::from_secs(120);

/// The development people of a local stack: an approver and a security admin/auditor.
pub const PEOPLE: &str = "\
# People of the local development stack (`cargo xtask up` / `demo`); see docs/control-plane.md.
# Certificates: CERTS_DIR/person-NAME.pem; use them with `countersign --as NAME ...`.
default_approvers: [sre]
people:
  - name: alice           # approves what the sre group may approve
    groups: [sre]
    roles: [approver]
  - name: sam             # security admin (policies) and auditor (audit trail)
    groups: [security]
    roles: [admin, auditor]
";

/// The three programs.
pub struct Binaries {
    pub agent: PathBuf,
    pub server: PathBuf,
    pub cli: PathBuf,
}

/// Builds the daemon, the server and the CLI.
pub fn build() -> Result<Binaries> {
    let built = artifacts::cargo_build(&[
        "build",
        "-p",
        "agent",
        "-p",
        "control-plane",
        "-p",
        "cli",
        "--bins",
    ])?;
    Ok(Binaries {
        agent: artifacts::find(&built, "countersign-agent", "bin")?,
        server: artifacts::find(&built, "countersign-server", "bin")?,
        cli: artifacts::find(&built, "countersign", "bin")?,
    })
}

/// Where a stack keeps its files.
pub struct Dirs {
    /// Server data: SQLite database, certificates, people file, audit key.
    pub server: PathBuf,
    /// Agent state (event log, uplink position), run (sockets) and bpffs pin directories;
    /// `None` uses the agent's defaults.
    pub agent_state: Option<PathBuf>,
    pub agent_run: Option<PathBuf>,
    pub bpffs: Option<PathBuf>,
}

impl Dirs {
    pub fn certs(&self) -> PathBuf {
        self.server.join("certs")
    }

    fn cert(&self, stem: &str) -> String {
        self.certs()
            .join(format!("{stem}.pem"))
            .to_string_lossy()
            .into_owned()
    }

    /// The agent socket of the daemon (for `countersign exec`).
    pub fn agent_socket(&self) -> PathBuf {
        self.agent_run
            .clone()
            .unwrap_or_else(|| PathBuf::from("/run/countersign"))
            .join("agent-api.sock")
    }
}

/// A running server and agent; both are stopped when this is dropped.
pub struct Stack {
    pub server: Child,
    pub agent: Child,
    pub url: String,
}

/// Creates the certificates (CA, server, this host, the people) and the people file when they
/// are missing; returns the host name the daemon's certificate carries.
pub fn prepare(bins: &Binaries, dirs: &Dirs) -> Result<String> {
    fs::create_dir_all(&dirs.server)
        .with_context(|| format!("creating {}", dirs.server.display()))?;
    let people = dirs.server.join("people.yaml");
    if !people.exists() {
        fs::write(&people, PEOPLE).with_context(|| format!("writing {}", people.display()))?;
    }
    // Certificate names are lower case.
    let host = util::output(&mut Command::new("hostname"))
        .map(|h| h.trim().to_ascii_lowercase())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    let certs = dirs.certs().to_string_lossy().into_owned();
    let mut steps = vec![
        vec!["certs", "init", "--dir", &certs],
        vec!["certs", "host", &host, "--dir", &certs],
    ];
    for person in ["alice", "sam"] {
        steps.push(vec!["certs", "person", person, "--dir", &certs]);
    }
    for args in steps {
        util::output(Command::new(&bins.cli).args(&args))?;
    }
    Ok(host)
}

/// Starts the server on `listen` and then the agent on `policy`, connected to it.
/// `quiet` sends their output to files in the server directory instead of the terminal.
pub fn start(
    bins: &Binaries,
    dirs: &Dirs,
    host: &str,
    policy: &Path,
    listen: &str,
    quiet: bool,
) -> Result<Stack> {
    let output = |name: &str| -> Result<(Stdio, Stdio)> {
        if !quiet {
            return Ok((Stdio::inherit(), Stdio::inherit()));
        }
        let path = dirs.server.join(format!("{name}.log"));
        let file =
            fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok((file.try_clone()?.into(), file.into()))
    };
    let mut server = Command::new(&bins.server);
    server
        .arg("serve")
        .arg("--data-dir")
        .arg(&dirs.server)
        .args(["--listen", listen])
        .args(["--tls-ca", &dirs.cert("ca")])
        .args(["--tls-cert", &dirs.cert("server")])
        .args(["--tls-key", &dirs.cert("server-key")]);
    let (out, err) = output("server")?;
    println!("    $ {}", util::describe(&server));
    let server = server
        .stdout(out)
        .stderr(err)
        .spawn()
        .context("starting countersign-server")?;
    let port = listen.rsplit(':').next().unwrap_or("7443");
    let url = format!("https://localhost:{port}");
    let mut stack = Stack {
        agent: placeholder()?,
        server,
        url,
    };
    wait_until("countersign-server listens", || {
        TcpStream::connect(listen).is_ok()
    })?;

    let mut agent = Command::new(&bins.agent);
    // The walk-through launches its agent as root; on a host without BPF LSM (fallback mode)
    // that needs the operator's consent, given here for the local stack only.
    agent
        .arg("run")
        .arg("--policy")
        .arg(policy)
        .args(["--root-agents", "allow"]);
    for (flag, dir) in [
        ("--state-dir", &dirs.agent_state),
        ("--run-dir", &dirs.agent_run),
        ("--bpffs", &dirs.bpffs),
    ] {
        if let Some(dir) = dir {
            agent.arg(flag).arg(dir);
        }
    }
    agent
        .args(["--server", &stack.url])
        .args(["--tls-ca", &dirs.cert("ca")])
        .args(["--tls-cert", &dirs.cert(&format!("host-{host}"))])
        .args(["--tls-key", &dirs.cert(&format!("host-{host}-key"))]);
    if !quiet {
        agent.arg("--follow");
    }
    let (out, err) = output("agent")?;
    println!("    $ {}", util::describe(&agent));
    stack.agent = agent
        .stdout(out)
        .stderr(err)
        .spawn()
        .context("starting countersign-agent")?;
    let socket = dirs.agent_socket();
    wait_until("countersign-agent is enforcing", || socket.exists())?;
    Ok(stack)
}

/// A child that has already exited, standing in until the agent starts.
fn placeholder() -> Result<Child> {
    let mut child = Command::new("true").spawn().context("starting `true`")?;
    let _ = child.wait();
    Ok(child)
}

fn wait_until(what: &str, ready: impl Fn() -> bool) -> Result<()> {
    let started = Instant::now();
    while !ready() {
        if started.elapsed() > READY {
            bail!("{what}: not within {READY:?}");
        }
        thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

impl Drop for Stack {
    /// SIGTERM to both (the agent's pinned programs keep enforcing; `demo` unloads them).
    fn drop(&mut self) {
        for child in [&mut self.agent, &mut self.server] {
            if let Ok(None) = child.try_wait() {
                let _ = Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .status();
                let _ = child.wait();
            }
        }
    }
}
