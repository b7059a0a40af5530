//! The command line of `cs-loop approvals`.

use tests::{bench::Failure, env::Mode};

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
        })
    }
}
