//! The command line of `cs-loop approvals`.

use tests::{bench::Failure, env::Mode};

use super::Via;
use crate::{harness::Bins, options::Flags};

/// Options of `approvals`.
pub struct Options {
    pub bins: Bins,
    pub mode: Mode,
    /// `host` or `vm`, for the report.
    pub env: String,
    pub iterations: usize,
    /// Unmeasured iterations first (connections, caches, the daemon's link to the server).
    pub warmup: usize,
    /// Keep the temp directory (logs of the server and the daemon) after a successful run.
    pub keep: bool,
    /// Where the approver sees and decides (`--via cli|slack|both`): iteration n takes
    /// `vias[n % len]`, so that with both the two paths alternate.
    pub vias: Vec<Via>,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Self, Failure> {
        let known = [
            "agent",
            "server",
            "cli",
            "mode",
            "env",
            "iterations",
            "warmup",
            "keep",
            "via",
        ];
        let f = Flags::parse("approvals", args, &known)?;
        let mode = match f.get("mode").unwrap_or("fallback") {
            "lsm" => Mode::Lsm,
            "fallback" => Mode::Fallback,
            other => {
                return Err(Failure::Usage(format!(
                    "approvals: --mode {other:?}: expected lsm or fallback"
                )))
            }
        };
        let vias = match f.get("via").unwrap_or("cli") {
            "cli" => vec![Via::Cli],
            "slack" => vec![Via::Slack],
            "both" => vec![Via::Cli, Via::Slack],
            other => {
                return Err(Failure::Usage(format!(
                    "approvals: --via {other:?}: expected cli, slack or both"
                )))
            }
        };
        Ok(Self {
            bins: Bins {
                agent: f.path("agent")?,
                server: f.path("server")?,
                cli: f.path("cli")?,
            },
            mode,
            env: f.get("env").unwrap_or("host").to_owned(),
            iterations: f.num("iterations", 200_usize)?.max(1),
            warmup: f.num("warmup", 5)?,
            keep: f.num("keep", 0_u8)? != 0,
            vias,
        })
    }
}

impl Options {
    /// Whether any iteration goes through Slack (the server then has a chat file).
    pub fn slack(&self) -> bool {
        self.vias.contains(&Via::Slack)
    }
}
