//! `cargo xtask up`: the local demo — set up, build, and run the agent in the foreground.

use std::{fs, os::unix::process::CommandExt as _, process::Command};

use anyhow::{Context as _, Result};

use crate::{artifacts, setup, util};

/// Where the agent keeps its state and its admin socket (its defaults).
const DIRS: &[&str] = &["/var/lib/countersign", "/run/countersign"];

/// Replaces this process with `countersign-agent run --follow`, so Ctrl-C reaches the agent.
pub fn run() -> Result<()> {
    setup::run()?;
    let built = artifacts::cargo_build(&["build", "-p", "agent", "--bins"])?;
    let agent = artifacts::find(&built, "countersign-agent", "bin")?;
    for dir in DIRS {
        fs::create_dir_all(dir).with_context(|| format!("creating {dir}"))?;
    }
    let policy = util::repo_root().join("examples/policy.yaml");
    let mut cmd = Command::new(&agent);
    cmd.args(["run", "--policy"]).arg(&policy).arg("--follow");
    println!("    $ {}", util::describe(&cmd));
    // exec only returns on failure.
    let err = cmd.exec();
    Err(err).with_context(|| format!("executing {}", agent.display()))
}
