//! `countersign-server`: the control-plane gRPC server, and a development-certificate
//! generator.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use control_plane::certs;
use control_plane::server::{self, config, Config};
use control_plane::store::RequestCaps;

#[derive(Parser)]
#[command(version, about = "Countersign control-plane server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
#[allow(
    clippy::large_enum_variant,
    reason = "parsed once at start; boxing would only obscure the flags"
)]
enum Command {
    /// Create (if missing) a development CA, server, host and person certificates.
    DevCerts {
        /// Directory for the PEM files.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Create a bearer token for a person: prints the token (give it to the person, once) and
    /// the `sha256:` line for their `tokens:` in the people file (the server keeps only that).
    Token,
    /// Serve the gRPC API (AgentService, ApprovalService, PolicyService, AuditService).
    Serve {
        /// Database, audit key, development certificates, default people file.
        #[arg(long, default_value = config::DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        /// Database URL: sqlite:///PATH or postgres://USER@HOST/DB
        /// [default: sqlite://DATA_DIR/countersign.db].
        #[arg(long)]
        database: Option<String>,
        /// People file (roles, groups, token digests) [default: DATA_DIR/people.yaml; missing
        /// there = nobody has a role].
        #[arg(long)]
        people: Option<PathBuf>,
        /// Policy stored as the first revision (author "bootstrap") when the store has none.
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Chat file (Slack, Microsoft Teams approvers; see docs/chat.md) [default:
        /// DATA_DIR/chat.yaml when it exists].
        #[arg(long)]
        chat: Option<PathBuf>,
        /// Address to listen on.
        #[arg(long, default_value = config::DEFAULT_LISTEN)]
        listen: SocketAddr,
        /// CA that client certificates must chain to (PEM). Without the three --tls-* flags,
        /// development certificates are created in DATA_DIR/certs.
        #[arg(long)]
        tls_ca: Option<PathBuf>,
        /// Server certificate (PEM).
        #[arg(long)]
        tls_cert: Option<PathBuf>,
        /// Server private key (PEM).
        #[arg(long)]
        tls_key: Option<PathBuf>,
        /// Most approval requests open at once per agent session; refusals of further
        /// operations are stored and audited (flag `not_approvable_flood`), asking ahead is
        /// refused with a clear error.
        #[arg(long, default_value_t = RequestCaps::DEFAULT.per_session, value_parser = clap::value_parser!(u32).range(1..))]
        max_open_requests_per_session: u32,
        /// Signs the audit records written since the last checkpoint this often (besides
        /// a checkpoint every 1000 records and one at the end of each export), so that the
        /// trail's unsigned tail stays short on a quiet server.
        #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
        checkpoint_every: std::time::Duration,
        /// File every signed audit checkpoint is appended to, outside the database (ship it,
        /// or the server log's "audit checkpoint signed" lines, off this host): `countersign
        /// audit verify --published FILE` then proves an export was not rewritten or cut
        /// [default: DATA_DIR/audit-checkpoints.jsonl].
        #[arg(long)]
        checkpoint_log: Option<PathBuf>,
        /// Most approval requests open at once per host.
        #[arg(long, default_value_t = RequestCaps::DEFAULT.per_host, value_parser = clap::value_parser!(u32).range(1..))]
        max_open_requests_per_host: u32,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Logs on stderr: stdout carries only the ready line (and dev-certs' listing).
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match Cli::parse().command {
        Command::DevCerts { dir } => {
            let dev = certs::generate_dev(&dir).context("generating development certificates")?;
            for (what, pair) in [
                ("CA", &dev.ca),
                ("server", &dev.server),
                ("host", &dev.host),
                ("person", &dev.person),
            ] {
                println!("{what:7} {} {}", pair.cert.display(), pair.key.display());
            }
        }
        Command::Token => {
            let (token, digest) = control_plane::people::token::generate();
            println!("token:  {token}");
            println!("people file, under the person's `tokens:`:  \"{digest}\"");
        }
        Command::Serve {
            data_dir,
            database,
            people,
            policy,
            chat,
            listen,
            tls_ca,
            tls_cert,
            tls_key,
            max_open_requests_per_session,
            max_open_requests_per_host,
            checkpoint_every,
            checkpoint_log,
        } => {
            if checkpoint_every.is_zero() {
                anyhow::bail!("--checkpoint-every must be longer than 0s");
            }
            let mut config = Config::new(data_dir, listen);
            config.checkpoint_every = checkpoint_every;
            config.checkpoint_log = checkpoint_log;
            config.request_caps = RequestCaps {
                per_session: max_open_requests_per_session,
                per_host: max_open_requests_per_host,
            };
            config.database = database;
            config.people = people;
            config.policy = policy;
            config.chat = chat;
            config.tls = config::tls_files(tls_ca, tls_cert, tls_key)?;
            let running = server::start(config).await?;
            println!(
                "countersign-server: serving on {} (store: {})",
                running.addr, running.store_description
            );
            if let Some(chat) = running.chat_addr {
                println!("countersign-server: chat endpoints on http://{chat}");
            }
            running.serve_until(shutdown_signal()).await?;
            tracing::info!("stopped");
        }
    }
    Ok(())
}

/// SIGTERM (systemd, docker stop) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
