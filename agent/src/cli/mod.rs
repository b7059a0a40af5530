//! The `countersign-agent` command line.

mod admin;
mod policy_cmd;

use std::{ffi::OsString, path::PathBuf, time::Duration};

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use crate::{
    daemon::{self, RootAgents},
    kernel::mode::ModeChoice,
};

#[derive(Debug, Parser)]
#[command(
    name = "countersign-agent",
    version,
    about = "Countersign host daemon: kernel enforcement of exec and connect rules for AI-agent cgroups"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct RunDir {
    /// Directory of the admin socket (and of the agent socket agent-api.sock).
    #[arg(long, default_value = "/run/countersign")]
    pub run_dir: PathBuf,
}

impl RunDir {
    pub fn socket(&self) -> PathBuf {
        self.run_dir.join("agent.sock")
    }
}

/// The control plane (all four together, or none: standalone).
#[derive(Debug, Args, Clone)]
pub struct ServerArgs {
    /// Control plane URL, e.g. https://countersign.example:7443.
    #[arg(long, requires_all = ["tls_ca", "tls_cert", "tls_key"])]
    pub server: Option<String>,
    /// CA certificate (PEM) the server's certificate must chain to.
    #[arg(long, requires = "server")]
    pub tls_ca: Option<PathBuf>,
    /// This host's certificate (PEM, URI SAN countersign://host/NAME).
    #[arg(long, requires = "server")]
    pub tls_cert: Option<PathBuf>,
    /// This host's private key (PEM).
    #[arg(long, requires = "server")]
    pub tls_key: Option<PathBuf>,
}

impl ServerArgs {
    /// The uplink configuration, checked (URL, readable TLS files).
    fn config(self) -> Result<Option<crate::uplink::Config>> {
        let (Some(server), Some(ca), Some(cert), Some(key)) =
            (self.server, self.tls_ca, self.tls_cert, self.tls_key)
        else {
            return Ok(None);
        };
        let config = crate::uplink::Config {
            server,
            ca,
            cert,
            key,
        };
        config
            .validate()
            .map_err(|e| anyhow::anyhow!("--server: {e}"))?;
        Ok(Some(config))
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon in the foreground.
    Run {
        /// Policy file(s), applied in order.
        #[arg(long, required = true)]
        policy: Vec<PathBuf>,
        /// Enforcement mode: auto picks LSM when the kernel offers BPF LSM.
        #[arg(long, value_enum, default_value = "auto")]
        mode: ModeChoice,
        /// Where the event log (events.jsonl) lives.
        #[arg(long, default_value = "/var/lib/countersign")]
        state_dir: PathBuf,
        #[command(flatten)]
        run_dir: RunDir,
        /// bpffs directory for pinned programs and maps.
        #[arg(long, default_value = "/sys/fs/bpf/countersign")]
        bpffs: PathBuf,
        /// Also print every event on stdout.
        #[arg(long)]
        follow: bool,
        /// Whether sessions whose command runs as root may start in fallback mode, where
        /// nothing keeps a root agent from stopping enforcement (docs/operations.md). LSM
        /// mode guards against root agents and always allows them.
        #[arg(long, value_enum, default_value = "refuse")]
        root_agents: RootAgents,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Show the daemon's mode, programs, agent groups and counters.
    Status {
        #[command(flatten)]
        run_dir: RunDir,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Re-read the policy files and swap the policy atomically.
    Reload {
        #[command(flatten)]
        run_dir: RunDir,
    },
    /// Run a command in a new session of an agent group.
    Launch {
        /// Agent group name.
        #[arg(long)]
        agent: String,
        /// Session name (default s-<pid>-<unix time>).
        #[arg(long)]
        session: Option<String>,
        /// Pass an environment variable to the command: NAME (its value here) or NAME=VALUE.
        /// Repeatable. Without it the command gets only PATH, HOME, USER, LOGNAME, SHELL,
        /// LANG, LANGUAGE, LC_*, TERM, COLORTERM, TZ and TMPDIR; COUNTERSIGN_* are refused.
        #[arg(long = "env", value_name = "NAME[=VALUE]")]
        env: Vec<OsString>,
        #[command(flatten)]
        run_dir: RunDir,
        /// Run the command as this user (a name, or a bare uid), with its primary group and
        /// no supplementary groups. Without it the command runs as the launcher.
        #[arg(long, value_name = "NAME|UID")]
        user: Option<String>,
        /// The command and its arguments.
        #[arg(required = true, last = true)]
        command: Vec<OsString>,
    },
    /// Install a grant (a retry token) for one operation.
    Grant {
        #[arg(long)]
        agent: String,
        /// Limit the grant to one session of the group.
        #[arg(long)]
        session: Option<String>,
        /// Fingerprint of the operation (from the event log).
        #[arg(long)]
        fingerprint: String,
        /// Uses (1..=8), or 0 for any number until it expires.
        #[arg(long, default_value_t = 1)]
        uses: u32,
        /// Lifetime, e.g. 30s, 10m.
        #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
        ttl: Duration,
        #[command(flatten)]
        run_dir: RunDir,
    },
    /// Detach every program and remove the pins: enforcement stops.
    Unload {
        #[arg(long, default_value = "/sys/fs/bpf/countersign")]
        bpffs: PathBuf,
    },
    /// Validate or explain policies.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate policy files; errors name file, line and rule.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Tell which rule decides an exec or a connect, and why.
    Explain {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Agent group (default: the first one).
        #[arg(long)]
        agent: Option<String>,
        /// A command line, e.g. "kubectl delete pod x".
        #[arg(long, conflicts_with = "connect", required_unless_present = "connect")]
        exec: Option<String>,
        /// A destination ADDR:PORT ([v6]:port for IPv6).
        #[arg(long)]
        connect: Option<String>,
        /// The connect is UDP (default TCP).
        #[arg(long)]
        udp: bool,
    },
}

/// Runs a command; returns the process exit code.
pub fn dispatch(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Run {
            policy,
            mode,
            state_dir,
            run_dir,
            bpffs,
            follow,
            root_agents,
            server,
        } => {
            let opts = daemon::Options {
                root_agents,
                policy,
                mode,
                state_dir,
                run_dir: run_dir.run_dir,
                bpffs,
                follow,
                server: server.config()?,
            };
            // Attached while this is the only thread (see `daemon::prepare`).
            let prepared = daemon::prepare(&opts)?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            rt.block_on(daemon::run(opts, prepared))?;
            Ok(0)
        }
        Command::Status { run_dir, json } => admin::status(&run_dir.socket(), json),
        Command::Reload { run_dir } => admin::reload(&run_dir.socket()),
        Command::Launch {
            agent,
            session,
            env,
            run_dir,
            user,
            command,
        } => admin::launch(
            &run_dir,
            &admin::Launch {
                agent: &agent,
                session: session.as_deref(),
                env: &env,
                user: user.as_deref(),
            },
            &command,
        ),
        Command::Grant {
            agent,
            session,
            fingerprint,
            uses,
            ttl,
            run_dir,
        } => admin::grant(&run_dir.socket(), agent, session, fingerprint, uses, ttl),
        Command::Unload { bpffs } => {
            crate::ebpf::unload(&bpffs)?;
            eprintln!(
                "countersign-agent: programs detached and pins removed from {}",
                bpffs.display()
            );
            Ok(0)
        }
        Command::Policy {
            command: PolicyCommand::Check { files },
        } => policy_cmd::check(&files),
        Command::Policy {
            command:
                PolicyCommand::Explain {
                    files,
                    agent,
                    exec,
                    connect,
                    udp,
                },
        } => policy_cmd::explain(
            &files,
            agent.as_deref(),
            exec.as_deref(),
            connect.as_deref(),
            udp,
        ),
    }
}
