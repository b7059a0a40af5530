//! The daemon as the agent socket's [`Host`]: groups and grants from the installed policy and
//! the kernel maps, processes and files from procfs.

use std::{
    path::PathBuf,
    time::{Duration, SystemTime},
};

use policy::{ConnectAttempt, Decision, ExecAttempt, FileId};

use crate::kernel::identity::KernelResolver;

use super::Daemon;
use crate::{
    agent_socket::{
        host::{Operation, Process},
        Host, LiveGrant,
    },
    grants,
    session::{scope_cgroup, GroupCgroup, SessionKey},
};

impl Daemon {
    /// The cgroup path of agent group `name` in the policy in force.
    pub(super) fn group_cgroup_of(&self, name: &str) -> Option<String> {
        let g = self.generations.read().unwrap_or_else(|p| p.into_inner());
        g.current()?
            .groups
            .iter()
            .find(|x| x.name == name)
            .map(|x| x.cgroup.clone())
    }
}

impl Daemon {
    /// The identity the kernel programs give the regular file `path` (`kernel::identity`).
    fn kernel_id(&self, path: &std::path::Path) -> Result<FileId, String> {
        let mut maps = self.maps.lock().unwrap_or_else(|p| p.into_inner());
        KernelResolver::new(&mut maps.identify).regular_file(path)
    }
}

impl Host for Daemon {
    fn groups(&self) -> Vec<GroupCgroup> {
        let g = self.generations.read().unwrap_or_else(|p| p.into_inner());
        g.current()
            .map(|names| {
                names
                    .groups
                    .iter()
                    .map(|x| GroupCgroup {
                        name: x.name.clone(),
                        cgroup: x.cgroup.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn cgroup_of(&self, pid: u32) -> Result<String, String> {
        self.hierarchy.of_pid(pid).map_err(|e| e.to_string())
    }

    fn live_grant(&self, key: &SessionKey, fingerprint: &str) -> Option<LiveGrant> {
        let op = self.bindings.get(fingerprint)?;
        let group = self.group_cgroup_of(&key.group)?;
        // The kernel tries the session's grants, then the group's.
        let mut scopes = vec![scope_cgroup(&group, &key.session)];
        if !key.session.is_empty() {
            scopes.push(scope_cgroup(&group, ""));
        }
        let ids: Vec<u64> = scopes
            .iter()
            .filter_map(|s| self.hierarchy.open(s).ok().map(|c| c.id))
            .collect();
        let maps = self.maps.lock().unwrap_or_else(|p| p.into_inner());
        let live = ids
            .iter()
            .find_map(|id| grants::live_for(&maps, *id, &op))?;
        drop(maps);
        let now_ns = grants::monotonic_ns().ok()?;
        let left = Duration::from_nanos(live.expires_ns.saturating_sub(now_ns));
        Some(LiveGrant {
            grant_id: live.grant_id,
            expires_at: SystemTime::now() + left,
            uses_left: live.uses_left,
        })
    }

    fn file_identity(&self, pid: u32, path: &str) -> Result<FileId, String> {
        // The file as the asking process sees it (its root and working directory), which is
        // the file its exec will open.
        let seen = match path.strip_prefix('/') {
            Some(abs) => PathBuf::from(format!("/proc/{pid}/root")).join(abs),
            None => PathBuf::from(format!("/proc/{pid}/cwd")).join(path),
        };
        self.kernel_id(&seen).map_err(|e| format!("{path}: {e}"))
    }

    fn write_stamp(&self, id: FileId) -> u64 {
        let maps = self.maps.lock().unwrap_or_else(|p| p.into_inner());
        maps.write_stamp(id.dev, id.ino)
    }

    fn exe_identity(&self, pid: u32) -> Option<FileId> {
        self.kernel_id(&PathBuf::from(format!("/proc/{pid}/exe")))
            .ok()
    }

    fn judge(&self, key: &SessionKey, op: &Operation) -> Result<Decision, String> {
        let policy = self.current_policy().ok_or("no policy is installed")?;
        let group = policy
            .group(&key.group)
            .ok_or_else(|| format!("agent group {} is not in the policy in force", key.group))?;
        Ok(match op {
            Operation::Exec {
                binary,
                stamp,
                path,
                argv,
                parent,
            } => {
                let attempt = ExecAttempt {
                    binary: *binary,
                    binary_path: Some(PathBuf::from(path)),
                    argv: argv.iter().map(|a| a.as_bytes().to_vec()).collect(),
                    parent: *parent,
                    agent_written: *stamp != 0,
                };
                let mut maps = self.maps.lock().unwrap_or_else(|p| p.into_inner());
                policy.decide_exec(group, &attempt, &KernelResolver::new(&mut maps.identify))
            }
            Operation::Connect {
                addr,
                port,
                transport,
            } => policy.decide_connect(
                group,
                &ConnectAttempt {
                    addr: *addr,
                    port: *port,
                    transport: *transport,
                },
            ),
        })
    }

    fn session_cgroup(&self, key: &SessionKey) -> Option<(String, u64)> {
        let group = self.group_cgroup_of(&key.group)?;
        let cg = self
            .hierarchy
            .open(&scope_cgroup(&group, &key.session))
            .ok()?;
        Some((cg.rel_path, cg.id))
    }

    fn launching_user(&self, key: &SessionKey) -> Option<String> {
        self.sessions.user(key)
    }

    fn process(&self, pid: u32) -> Process {
        let Ok(p) = procfs::process::Process::new(pid as i32) else {
            return Process {
                pid,
                ..Default::default()
            };
        };
        let status = p.status().ok();
        Process {
            pid,
            uid: status.as_ref().map_or(0, |s| s.ruid),
            gid: status.as_ref().map_or(0, |s| s.rgid),
            comm: p.stat().map(|s| s.comm).unwrap_or_default(),
            exe: p.exe().ok().map(|e| e.to_string_lossy().into_owned()),
        }
    }
}
