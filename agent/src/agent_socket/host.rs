//! What the agent socket needs from the daemon: the agent groups, a process's cgroup, the
//! kernel's grants, file identities and the policy's verdict. The daemon implements it; tests
//! use a fake. Every method may block briefly (procfs, map lookups).

use std::{net::IpAddr, time::SystemTime};

use policy::{Decision, FileId, Transport};

use crate::session::{GroupCgroup, SessionKey};

/// A grant the kernel holds right now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveGrant {
    pub grant_id: u64,
    pub expires_at: SystemTime,
    /// One-use slots left, or 0 for a grant of unlimited uses.
    pub uses_left: u32,
}

/// An operation to judge before it is tried.
#[derive(Clone, Debug)]
pub enum Operation {
    Exec {
        binary: FileId,
        /// The file's write stamp (`agent_common::grant::Grant::stamp`) when asked.
        stamp: u64,
        path: String,
        /// argv[0] included.
        argv: Vec<String>,
        /// Identity of the asking process's executable (the likely parent).
        parent: Option<FileId>,
    },
    Connect {
        addr: IpAddr,
        port: u16,
        transport: Transport,
    },
}

/// The caller process as the control plane should see it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    pub uid: u32,
    pub gid: u32,
    pub comm: String,
    pub exe: Option<String>,
}

/// The daemon, as the agent socket sees it.
pub trait Host: Send + Sync + 'static {
    /// The agent groups of the policy in force.
    fn groups(&self) -> Vec<GroupCgroup>;
    /// The cgroup v2 path of a process.
    fn cgroup_of(&self, pid: u32) -> Result<String, String>;
    /// A live grant for `fingerprint` in the session (or its whole group).
    fn live_grant(&self, key: &SessionKey, fingerprint: &str) -> Option<LiveGrant>;
    /// Identity (kernel device encoding) of the file `path` as process `pid` sees it.
    fn file_identity(&self, pid: u32, path: &str) -> Result<FileId, String>;
    /// The write stamp the kernel keeps for file `id` (0: no watched process wrote it).
    fn write_stamp(&self, id: FileId) -> u64;
    /// Identity of process `pid`'s executable.
    fn exe_identity(&self, pid: u32) -> Option<FileId>;
    /// What the policy in force says about `op` in the session's group.
    fn judge(&self, key: &SessionKey, op: &Operation) -> Result<Decision, String>;
    /// Path and id of the session's cgroup (the group's for an empty session).
    fn session_cgroup(&self, key: &SessionKey) -> Option<(String, u64)>;
    /// Who launched the session.
    fn launching_user(&self, key: &SessionKey) -> Option<String>;
    /// The caller process's details.
    fn process(&self, pid: u32) -> Process;
}
