//! `policy check` and `policy explain`: offline, no daemon needed.

use std::{
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
};

use anyhow::{anyhow, bail, Context, Result};
use policy::{ConnectAttempt, ExecAttempt, HostResolver, Policy, Resolver, Transport};

pub fn check(files: &[PathBuf]) -> Result<i32> {
    match Policy::load(files) {
        Ok(p) => {
            println!(
                "ok: {} agent group(s), {} rule(s)",
                p.agents.len(),
                p.rules.len()
            );
            Ok(0)
        }
        Err(errors) => {
            eprintln!("{errors}");
            Ok(1)
        }
    }
}

pub fn explain(
    files: &[PathBuf],
    agent: Option<&str>,
    exec: Option<&str>,
    connect: Option<&str>,
    udp: bool,
) -> Result<i32> {
    let policy = Policy::load(files).map_err(|e| anyhow!("{e}"))?;
    let group = match agent {
        Some(name) => policy
            .agents
            .iter()
            .find(|g| g.name == name)
            .ok_or_else(|| anyhow!("no agent group {name:?}"))?,
        None => policy
            .agents
            .first()
            .ok_or_else(|| anyhow!("the policy has no agent group"))?,
    };
    let explanation = match (exec, connect) {
        (Some(cmd), _) => {
            let argv: Vec<Vec<u8>> = cmd
                .split_whitespace()
                .map(|a| a.as_bytes().to_vec())
                .collect();
            let first = cmd
                .split_whitespace()
                .next()
                .ok_or_else(|| anyhow!("--exec needs a command"))?;
            let path = which(first).ok_or_else(|| anyhow!("{first}: not found in PATH"))?;
            let binary = HostResolver
                .identity(&path)
                .ok_or_else(|| anyhow!("{}: cannot stat", path.display()))?;
            let attempt = ExecAttempt {
                binary,
                binary_path: Some(path),
                argv,
                parent: None,
                agent_written: false,
            };
            policy::explain_exec(&policy, group, &attempt, &HostResolver)
        }
        (None, Some(dest)) => {
            let addr: SocketAddr = dest
                .parse()
                .with_context(|| format!("{dest:?} is not ADDR:PORT"))?;
            let ip: IpAddr = addr.ip();
            let transport = if udp { Transport::Udp } else { Transport::Tcp };
            policy::explain_connect(
                &policy,
                group,
                &ConnectAttempt {
                    addr: ip,
                    port: addr.port(),
                    transport,
                },
            )
        }
        (None, None) => bail!("give --exec or --connect"),
    };
    println!("{}", explanation.text);
    Ok(0)
}

/// Resolves a command name the way a shell would.
fn which(cmd: &str) -> Option<PathBuf> {
    if cmd.contains('/') {
        return Some(PathBuf::from(cmd));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(cmd))
        .find(|p| Path::new(p).is_file())
}
