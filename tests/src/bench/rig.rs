//! A benchmark's daemon and the places it runs in, all named after the program and its pid:
//! the temp directory `/tmp/<program>-<pid>`, the cgroup `/<program>/run-<pid>` (the run's
//! own cgroups go below it) and the daemon's pins under `<bpffs>/<program>-<pid>`. The pid
//! keeps concurrent runs apart and lets the next run sweep what a killed one left behind.
//! Removal runs on the normal path and, as a last resort, when the rig is dropped (a panic).

use std::{
    fs,
    path::{Path, PathBuf},
};

use crate::{agent::Agent, cgroup::Cgroup, env::TestEnv, leftovers, mounts};

use super::guarded;

/// See the module documentation.
pub struct Rig {
    /// `cs-bench` or `cs-loop`: the names' stem and the prefix of messages.
    program: &'static str,
    dir: PathBuf,
    cgroup_root: PathBuf,
    /// `/<program>/run-<pid>`.
    cgroup: Cgroup,
    /// The daemon (not started yet).
    pub agent: Agent,
    /// Keep the temp directory (daemon logs) when cleaning up: something failed.
    keep_dir: bool,
    /// `remove` ran.
    cleaned: bool,
}

impl Rig {
    /// Sweeps the leftovers of dead runs of `program`, then creates a fresh temp directory and
    /// prepares (without starting it) a daemon as `env` says. The cgroup is not created: the
    /// run creates the cgroups it needs below [`Rig::cgroup`].
    pub fn new(program: &'static str, env: &TestEnv) -> Result<Self, String> {
        let cgroup_root = mounts::find("cgroup2").ok_or("no cgroup2 file system is mounted")?;
        // The daemon mounts bpffs on /sys/fs/bpf itself when nothing is mounted yet.
        let bpffs = mounts::find("bpf").unwrap_or_else(|| PathBuf::from("/sys/fs/bpf"));
        let parent = format!("/{program}");
        let prefix = format!("{program}-");
        leftovers::sweep(&cgroup_root, &parent, &bpffs, &prefix, &env.agent_bin);
        let pid = std::process::id();
        let dir = std::env::temp_dir().join(format!("{prefix}{pid}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        Ok(Self {
            program,
            agent: Agent::new(env, &dir, bpffs.join(format!("{prefix}{pid}"))),
            cgroup: Cgroup::new(&cgroup_root, &format!("{parent}/run-{pid}")),
            cgroup_root,
            dir,
            keep_dir: false,
            cleaned: false,
        })
    }

    /// The temp directory (server data, daemon state and logs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The run's cgroup, `/<program>/run-<pid>`; removed with everything below it.
    pub fn cgroup(&self) -> &Cgroup {
        &self.cgroup
    }

    /// Starts the daemon (ready, mode checked); the error carries its logs.
    pub fn start_agent(&mut self) -> Result<(), String> {
        let agent = &mut self.agent;
        // The harness panics on trouble (it was written for tests); here that is an error.
        guarded("starting the daemon", || agent.start())
            .map_err(|e| format!("{e}\n{}", self.agent.diagnostics()))
    }

    /// Keeps the temp directory at clean-up: something went wrong that its logs may explain.
    pub fn keep_files(&mut self) {
        self.keep_dir = true;
    }

    /// Stops and unloads the daemon, then [`Rig::remove`]s the rest. Returns the problems.
    pub fn clean_up(&mut self, failed: bool) -> Vec<String> {
        let problems = self.agent.shut_down();
        self.remove(failed, problems)
    }

    /// Removes the cgroups and, unless `failed` (or [`Rig::keep_files`]), the temp directory.
    /// Returns `problems` plus those of the removal. [`Rig::clean_up`] calls it once the daemon
    /// is down; a run with more processes than the daemon (a server) stops the daemon, then
    /// the others, with their problems, then calls this itself.
    pub fn remove(&mut self, failed: bool, mut problems: Vec<String>) -> Vec<String> {
        self.cleaned = true;
        self.keep_dir |= failed;
        if let Err(e) = self.cgroup.remove_tree() {
            problems.push(e);
        }
        // Only succeeds once the last run's cgroup is gone, which is what we want.
        let _ = fs::remove_dir(self.cgroup_root.join(self.program));
        if self.keep_dir || !problems.is_empty() {
            eprintln!("{}: files kept in {}", self.program, self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
        problems
    }
}

impl Drop for Rig {
    /// Last line of defence (a panic in the harness): the normal path calls `clean_up`.
    fn drop(&mut self) {
        if self.cleaned {
            return;
        }
        let problems = self.clean_up(std::thread::panicking());
        if !problems.is_empty() {
            eprintln!("{}: cleanup: {}", self.program, problems.join("; "));
        }
    }
}
