//! `cargo xtask up`: the local installation in the foreground — set up, build, start
//! `countersign-server` (SQLite and development certificates in /var/lib/countersign-server)
//! and `countersign-agent` connected to it with examples/policy.yaml.

use std::path::PathBuf;

use anyhow::{Context as _, Result};

use crate::{setup, stack, util};

/// The server's data directory (its default).
pub const SERVER_DIR: &str = "/var/lib/countersign-server";
/// Where `up` listens.
const LISTEN: &str = "127.0.0.1:7443";

/// Runs until the agent exits (Ctrl-C stops both; the pinned programs keep enforcing until
/// `countersign-agent unload`).
pub fn run() -> Result<()> {
    setup::run()?;
    let bins = stack::build()?;
    let dirs = stack::Dirs {
        server: PathBuf::from(SERVER_DIR),
        agent_state: None,
        agent_run: None,
        bpffs: None,
    };
    let host = stack::prepare(&bins, &dirs)?;
    let policy = util::repo_root().join("examples/policy.yaml");
    let mut stack = stack::start(&bins, &dirs, &host, &policy, LISTEN, false)?;
    println!(
        "\ncountersign is up: server {} (host certificate '{host}'), people in {}/people.yaml.\n\
         Approver CLI:  {} --as alice pending\n\
         Agent session: {} launch --agent coding-agents -- bash\n",
        stack.url,
        SERVER_DIR,
        bins.cli.display(),
        bins.agent.display(),
    );
    let status = stack
        .agent
        .wait()
        .context("waiting for countersign-agent")?;
    println!("countersign-agent exited ({status}); stopping the server");
    Ok(())
}
