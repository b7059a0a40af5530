//! `countersign`: the command line of approvers, security admins, auditors and AI agents.
//!
//! People's commands speak gRPC to the control plane over mutual TLS; the agent-side
//! commands (`exec`, `request`, `why`, and the MCP server `mcp`) speak only to the local
//! daemon's agent socket.
//! Exit statuses: 0 ok (or CMD's for `exec`), 1 refused/denied/expired, 2 usage, 3 server or
//! socket unreachable.

mod agent_side;
mod commands;
mod connect;
mod exit;
mod json;
mod mcp;
mod output;
mod render;
mod when;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use agent_side::{exec::ExecArgs, request::RequestArgs, why::WhyArgs};
use commands::audit::AuditCommand;
use commands::certs::CertsCommand;
use commands::decide::{ApproveArgs, DenyArgs};
use commands::pending::PendingArgs;
use commands::people::PeopleCommand;
use commands::policy::PolicyCommand;
use commands::revoke::RevokeArgs;
use commands::show::ShowArgs;
use connect::ServerArgs;
use exit::{Failure, Outcome};
use mcp::McpArgs;
use output::errln;

/// Countersign: human approval for the dangerous actions of AI agents.
#[derive(Debug, Parser)]
#[command(name = "countersign", version, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Requests waiting for your decision.
    Pending(PendingArgs),
    /// Everything about one request.
    Show(ShowArgs),
    /// Approve a request once or for a while.
    Approve(ApproveArgs),
    /// Deny a request, with a reason.
    Deny(DenyArgs),
    /// Revoke a grant before it is used up or expires.
    Revoke(RevokeArgs),
    /// The audit trail: export, query, verify.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The policy the server distributes: validate, push, history, get.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Chat accounts (Slack, Teams) linked to people: link, unlink, list.
    #[command(subcommand)]
    People(PeopleCommand),
    /// Development CA and certificates.
    #[command(subcommand)]
    Certs(CertsCommand),
    /// (agent side) Run a command; if it needs approval, wait and retry once granted.
    Exec(ExecArgs),
    /// (agent side) Ask ahead for approval of a command, with a reason.
    Request(RequestArgs),
    /// (agent side) Why was my session's latest operation refused?
    Why(WhyArgs),
    /// (agent side) MCP server on stdio: AI agents ask for approval through tools.
    Mcp(McpArgs),
}

fn main() -> ExitCode {
    // First, while the process has one thread (see render::time).
    render::time::init_local_offset();
    // Usage errors exit 2, --help and --version 0 (clap's own statuses).
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("COUNTERSIGN_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            errln!("countersign: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

fn run(cli: Cli) -> Outcome {
    match &cli.command {
        Command::Exec(args) => agent_side::exec::run(args),
        Command::Request(args) => agent_side::request::run(args),
        Command::Why(args) => agent_side::why::run(args),
        Command::Mcp(args) => mcp::run(args),
        Command::Certs(command) => commands::certs::run(command, &cli.server.certs_dir),
        Command::Audit(AuditCommand::Verify(args)) => commands::audit::verify::run(args),
        _ => server_command(&cli),
    }
}

/// The commands that need the server: one connection, then the call.
fn server_command(cli: &Cli) -> Outcome {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::refused(format!("starting the async runtime: {e}")))?;
    runtime.block_on(async {
        let conn = connect::connect(&cli.server).await?;
        match &cli.command {
            Command::Pending(args) => commands::pending::run(&conn, args).await,
            Command::Show(args) => commands::show::run(&conn, args).await,
            Command::Approve(args) => commands::decide::approve(&conn, args).await,
            Command::Deny(args) => commands::decide::deny(&conn, args).await,
            Command::Revoke(args) => commands::revoke::run(&conn, args).await,
            Command::Audit(AuditCommand::Export(args)) => {
                commands::audit::export::run(&conn, args).await
            }
            Command::Audit(AuditCommand::Query(args)) => {
                commands::audit::query::run(&conn, args).await
            }
            Command::Policy(command) => commands::policy::run(&conn, command).await,
            Command::People(command) => commands::people::run(&conn, command).await,
            Command::Audit(AuditCommand::Verify(_))
            | Command::Certs(_)
            | Command::Exec(_)
            | Command::Request(_)
            | Command::Why(_)
            | Command::Mcp(_) => Err(Failure::usage("not a server command")),
        }
    })
}

#[cfg(test)]
mod tests;
