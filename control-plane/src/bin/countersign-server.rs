//! `countersign-server`: the control-plane gRPC server (first slice: AgentService.Register over
//! mutual TLS) and a development-certificate generator.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use control_plane::certs;
use control_plane::rpc::agent::{self, AgentApi};
use control_plane::tls::{self, TlsFiles};

#[derive(Parser)]
#[command(version, about = "Countersign control-plane server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create (if missing) a development CA, server, host and person certificates.
    DevCerts {
        /// Directory for the PEM files.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Serve the gRPC API over mutual TLS.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:7443")]
        listen: SocketAddr,
        /// CA that client certificates must chain to (PEM).
        #[arg(long)]
        client_ca: PathBuf,
        /// Server certificate (PEM).
        #[arg(long)]
        cert: PathBuf,
        /// Server private key (PEM).
        #[arg(long)]
        key: PathBuf,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
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
        Command::Serve {
            listen,
            client_ca,
            cert,
            key,
        } => {
            let files = TlsFiles {
                ca: client_ca,
                cert,
                key,
            };
            tracing::info!(%listen, "serving countersign.v1 over mutual TLS");
            tls::server(&files)?
                .add_service(agent::service(AgentApi))
                .serve_with_shutdown(listen, async {
                    // Ctrl-C or SIGINT stops accepting and drains in-flight calls.
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await
                .context("gRPC server")?;
        }
    }
    Ok(())
}
