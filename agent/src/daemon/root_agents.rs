//! `--root-agents refuse|allow`: whether a session whose command runs as root may start.
//!
//! In LSM mode the guards hold against a root agent (docs/operations.md, "The guards"), so
//! root sessions always start. In fallback mode nothing keeps a root agent from killing the
//! daemon, removing the pins or leaving its cgroup: the default refuses such sessions, so that
//! nobody runs one believing it is contained; `allow` is the operator saying they know.

use agent_common::Mode;
use anyhow::{bail, Result};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum RootAgents {
    /// Refuse, in fallback mode, sessions whose command runs as root.
    #[default]
    Refuse,
    /// Start them anyway (fallback mode does not contain them).
    Allow,
}

impl RootAgents {
    /// Whether a session whose command runs as `runs_as` may start under `mode`.
    pub fn check(self, mode: Mode, runs_as: Option<u32>) -> Result<()> {
        if self == RootAgents::Allow || mode == Mode::Lsm || runs_as != Some(0) {
            return Ok(());
        }
        bail!(
            "this daemon runs in fallback mode, where a root agent can stop enforcement, and \
             refuses sessions that run as root (--root-agents refuse): launch with --user \
             NAME, or start the daemon with --root-agents allow to accept the risk"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_root_in_fallback_mode_is_refused_by_default() {
        let r = RootAgents::default();
        assert!(r.check(Mode::Fallback, Some(0)).is_err());
        assert!(r.check(Mode::Fallback, Some(1000)).is_ok());
        assert!(r.check(Mode::Lsm, Some(0)).is_ok());
        assert!(RootAgents::Allow.check(Mode::Fallback, Some(0)).is_ok());
        // A launcher of an older build does not say: it is not refused on a guess.
        assert!(r.check(Mode::Fallback, None).is_ok());
    }
}
