//! cgroup v2 hierarchy: mount point, ids, levels, sessions.
//!
//! Paths inside the hierarchy ("rel paths") are written like the policy and `/proc/PID/cgroup`
//! write them: `/` for the root, `/countersign/coding-agents` below it.

mod ancestry;

use std::collections::HashMap;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

pub use ancestry::{parent_chain, ParentInfo};

use crate::kernel::mounts::mount_table;

/// Where cgroup v2 is usually mounted: alone (unified) or beside v1 (hybrid), in that order.
const USUAL_MOUNTS: [&str; 2] = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"];

/// cgroup v2 errors; each names the path involved.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("reading /proc/self/mountinfo: {0}")]
    Mountinfo(#[from] procfs::ProcError),
    #[error("no cgroup2 filesystem is mounted (see /proc/self/mountinfo): mount one, e.g. `mount -t cgroup2 none /sys/fs/cgroup`")]
    NoCgroup2,
    #[error("invalid cgroup path {rel:?}: {reason}")]
    InvalidPath { rel: String, reason: &'static str },
    #[error("cgroup {rel} does not exist ({})", path.display())]
    NotFound { rel: String, path: PathBuf },
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: String,
        path: PathBuf,
        source: io::Error,
    },
    #[error("/proc/{pid}/cgroup has no cgroup v2 (`0::`) line")]
    NoUnifiedLine { pid: u32 },
    #[error(
        "{} has cgroups more than {depth} levels below it: the kernel programs could not tell \
         that their processes belong to the agent group; remove them",
        path.display()
    )]
    TooDeep { path: PathBuf, depth: u32 },
}

/// The mounted cgroup v2 hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hierarchy {
    root: PathBuf,
}

/// One cgroup v2 directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cgroup {
    /// Path inside the hierarchy, normalised: `/` or `/a/b`.
    pub rel_path: String,
    /// Path in the filesystem.
    pub path: PathBuf,
    /// Inode number of the directory, which is the cgroup id `bpf_get_current_cgroup_id()`
    /// returns (kernel ≥ 5.5 hands out 64-bit kernfs ids as inode numbers).
    pub id: u64,
    /// Depth below the root (root = 0), as `cgroup.level` and `bpf_get_current_ancestor_cgroup_id` count.
    pub level: u32,
}

impl Hierarchy {
    /// Finds the cgroup2 mount point in /proc/self/mountinfo. With several, the usual
    /// places win, and a mount of the hierarchy's root over a mount of a subtree.
    pub fn discover() -> Result<Self, CgroupError> {
        let mounts: Vec<_> = mount_table()?
            .into_iter()
            .filter(|m| m.fs_type == "cgroup2")
            .collect();
        let rank = |m: &procfs::process::MountInfo| {
            let usual = USUAL_MOUNTS
                .iter()
                .position(|u| m.mount_point == Path::new(u));
            (m.root != "/", usual.unwrap_or(USUAL_MOUNTS.len()))
        };
        let best = mounts
            .iter()
            .min_by_key(|m| rank(m))
            .ok_or(CgroupError::NoCgroup2)?;
        Ok(Self {
            root: best.mount_point.clone(),
        })
    }

    /// A hierarchy mounted at `root` (tests, or an operator's override).
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The mount point.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The filesystem path of `rel` (no checks; see [`Hierarchy::open`]).
    pub fn path_of(&self, rel: &str) -> PathBuf {
        self.root.join(rel.trim_start_matches('/'))
    }

    /// Creates `rel` and its missing parents, then opens it.
    pub fn ensure(&self, rel: &str) -> Result<Cgroup, CgroupError> {
        let (rel, _) = normalize(rel)?;
        let path = self.path_of(&rel);
        std::fs::create_dir_all(&path)
            .map_err(|source| io_err("creating cgroup", &path, source))?;
        self.open(&rel)
    }

    /// Path (inside the hierarchy) of the cgroup with id `id`, searched from `under` down to
    /// `depth` levels below it.
    pub fn find(&self, under: &str, id: u64, depth: usize) -> Option<String> {
        let found = search(&self.path_of(under), id, depth)?;
        let rel = found.strip_prefix(&self.root).ok()?;
        Some(format!("/{}", rel.display()))
    }

    /// Every cgroup from `under` down to `depth` levels below it, by id (inode number), with
    /// its path inside the hierarchy: one walk, for naming many cgroups at once.
    pub fn index(&self, under: &str, depth: usize) -> HashMap<u64, String> {
        let mut found = HashMap::new();
        collect(&self.root, &self.path_of(under), depth, &mut found);
        found
    }

    /// An existing cgroup.
    pub fn open(&self, rel: &str) -> Result<Cgroup, CgroupError> {
        let (rel_path, level) = normalize(rel)?;
        let path = self.path_of(&rel_path);
        let meta = match std::fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => meta,
            Ok(_) => {
                return Err(CgroupError::NotFound {
                    rel: rel_path,
                    path,
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(CgroupError::NotFound {
                    rel: rel_path,
                    path,
                })
            }
            Err(source) => return Err(io_err("reading", &path, source)),
        };
        Ok(Cgroup {
            rel_path,
            id: meta.ino(),
            level,
            path,
        })
    }

    /// The cgroup v2 path of a process, from the `0::` line of /proc/PID/cgroup. It is
    /// relative to the reader's cgroup namespace root, which is the hierarchy's root for a
    /// daemon running in the initial namespace.
    pub fn of_pid(&self, pid: u32) -> Result<String, CgroupError> {
        let file = PathBuf::from(format!("/proc/{pid}/cgroup"));
        let text =
            std::fs::read_to_string(&file).map_err(|source| io_err("reading", &file, source))?;
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .ok_or(CgroupError::NoUnifiedLine { pid })?;
        Ok(line.trim_end_matches(" (deleted)").to_owned())
    }
}

impl Cgroup {
    /// Moves a process (all its threads) into this cgroup.
    pub fn move_pid(&self, pid: u32) -> Result<(), CgroupError> {
        let procs = self.path.join("cgroup.procs");
        std::fs::write(&procs, pid.to_string())
            .map_err(|source| io_err(&format!("moving pid {pid} into"), &self.path, source))
    }

    /// Caps how deep cgroups may be created below this one (`cgroup.max.depth`), after
    /// checking that none is deeper already.
    pub fn limit_depth(&self, depth: u32) -> Result<(), CgroupError> {
        let deepest = deepest_below(&self.path, depth + 1);
        if deepest > depth {
            return Err(CgroupError::TooDeep {
                path: self.path.clone(),
                depth,
            });
        }
        let file = self.path.join("cgroup.max.depth");
        std::fs::write(&file, depth.to_string())
            .map_err(|source| io_err("limiting the depth of", &self.path, source))
    }

    /// The processes directly in this cgroup.
    pub fn pids(&self) -> Result<Vec<u32>, CgroupError> {
        let procs = self.path.join("cgroup.procs");
        let text =
            std::fs::read_to_string(&procs).map_err(|source| io_err("reading", &procs, source))?;
        Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }

    /// Removes the cgroup when it has neither processes nor children. `Ok(false)`: still in
    /// use. `Ok(true)`: removed, or already gone.
    pub fn remove_if_empty(&self) -> Result<bool, CgroupError> {
        match std::fs::remove_dir(&self.path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EBUSY | libc::ENOTEMPTY)) => Ok(false),
            Err(source) => Err(io_err("removing cgroup", &self.path, source)),
        }
    }
}

fn search(dir: &std::path::Path, id: u64, depth: usize) -> Option<std::path::PathBuf> {
    if std::fs::metadata(dir).ok()?.ino() == id {
        return Some(dir.to_path_buf());
    }
    if depth == 0 {
        return None;
    }
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            if let Some(p) = search(&entry.path(), id, depth - 1) {
                return Some(p);
            }
        }
    }
    None
}

fn collect(root: &Path, dir: &Path, depth: usize, found: &mut HashMap<u64, String>) {
    let (Ok(meta), Ok(rel)) = (std::fs::metadata(dir), dir.strip_prefix(root)) else {
        return;
    };
    found.insert(meta.ino(), format!("/{}", rel.display()));
    if depth == 0 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            collect(root, &entry.path(), depth - 1, found);
        }
    }
}

/// Levels of descendant directories below `dir`, counted up to `limit`.
fn deepest_below(dir: &std::path::Path, limit: u32) -> u32 {
    if limit == 0 {
        return 0;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| 1 + deepest_below(&e.path(), limit - 1))
        .max()
        .unwrap_or(0)
}

/// `/`-separated components, leading/trailing/double slashes ignored; `.` and `..` refused
/// so that a rel path cannot leave the hierarchy. Returns the normal form and its depth.
fn normalize(rel: &str) -> Result<(String, u32), CgroupError> {
    let invalid = |reason| CgroupError::InvalidPath {
        rel: rel.to_owned(),
        reason,
    };
    let parts: Vec<&str> = rel.split('/').filter(|p| !p.is_empty()).collect();
    if parts.iter().any(|p| *p == "." || *p == "..") {
        return Err(invalid("`.` and `..` are not allowed"));
    }
    if rel.contains('\0') {
        return Err(invalid("NUL byte"));
    }
    let level = u32::try_from(parts.len()).map_err(|_| invalid("too deep"))?;
    Ok((format!("/{}", parts.join("/")), level))
}

fn io_err(action: &str, path: &Path, source: io::Error) -> CgroupError {
    CgroupError::Io {
        action: action.to_owned(),
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests;
