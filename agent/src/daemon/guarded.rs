//! The files no process of a session may change (LSM mode). The daemon's own: the state and
//! run directories (every entry), the policy files, the control plane's certificates and key,
//! and the daemon's binary. And the spools of cron and at, whose jobs run outside every
//! session. Written into the pinned `GUARDED_FILES` map at start, before the guards attach,
//! with the identities `stat()` reports; once the programs that can answer for the kernel's
//! view are attached, the kernel's identities are added where they differ (btrfs subvolumes,
//! overlayfs: `kernel::identity`), so such a file is not silently unguarded
//! (docs/operations.md, "The guards").

use std::{
    fs,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
};

use agent_common::tamper::{guarded, GuardedFile};
use policy::FileId;

use super::Options;

/// Subdirectories of the state directory the daemon writes later: created now, so that they
/// are guarded from the start.
const STATE_SUBDIRS: &[&str] = &["policy", "sessions"];
/// How deep below the state directory directories are guarded.
const MAX_DEPTH: usize = 4;

/// The spools of the services that run later what is written there, outside the session:
/// cron (the system crontab and its directories, every account's crontab) and at (Debian's
/// `/var/spool/cron/atjobs`, other distributions' `/var/spool/at`). A directory is guarded
/// with the directories below it ([`SPOOL_DEPTH`] levels).
pub const SPOOLS: &[&str] = &[
    "/etc/crontab",
    "/etc/anacrontab",
    "/etc/cron.d",
    "/etc/cron.hourly",
    "/etc/cron.daily",
    "/etc/cron.weekly",
    "/etc/cron.monthly",
    "/var/spool/cron",
    "/var/spool/at",
];
const SPOOL_DEPTH: usize = 2;

/// How a path becomes the identity the programs compare: `stat()`'s ([`by_stat`]) or the
/// kernel's (`KernelResolver::existing`). None: the file does not exist.
pub type Identify<'a> = &'a dyn Fn(&Path) -> Option<FileId>;

/// `stat()`'s identity of `path` (symlinks followed).
pub fn by_stat(path: &Path) -> Option<FileId> {
    let md = fs::metadata(path)
        .inspect_err(|e| tracing::debug!(path = %path.display(), error = %e, "not guarded"))
        .ok()?;
    Some(FileId::from_stat(md.dev(), md.ino()))
}

/// What to guard: the daemon's files, then the spools that exist on this host, each with its
/// kind (`agent_common::tamper::guarded`). Found once per start; [`identities`] gives them
/// the identities the programs compare.
pub fn paths(opts: &Options) -> Vec<(PathBuf, u32)> {
    let mut out = Vec::new();
    kinds(&own(opts), guarded::FILE, guarded::DIRECTORY, &mut out);
    let mut spools = Vec::new();
    for spool in SPOOLS {
        directories(Path::new(spool), SPOOL_DEPTH, &mut spools);
    }
    kinds(
        &spools,
        guarded::SPOOL_FILE,
        guarded::SPOOL_DIRECTORY,
        &mut out,
    );
    out
}

/// The identities of `paths` as `id` finds them (missing files left out).
pub fn identities(paths: &[(PathBuf, u32)], id: Identify) -> Vec<(GuardedFile, u32)> {
    paths
        .iter()
        .filter_map(|(p, kind)| {
            let id = id(p)?;
            Some((
                GuardedFile {
                    dev: id.dev,
                    ino: id.ino,
                },
                *kind,
            ))
        })
        .collect()
}

/// The daemon's own files and directories.
fn own(opts: &Options) -> Vec<PathBuf> {
    for sub in STATE_SUBDIRS {
        if let Err(e) = fs::create_dir_all(opts.state_dir.join(sub)) {
            tracing::warn!(dir = %opts.state_dir.join(sub).display(), error = %e, "cannot create");
        }
    }
    let mut paths: Vec<PathBuf> = Vec::new();
    directories(&opts.state_dir, MAX_DEPTH, &mut paths);
    paths.push(opts.run_dir.clone());
    paths.extend(opts.policy.iter().cloned());
    if let Some(server) = &opts.server {
        paths.extend([server.ca.clone(), server.cert.clone(), server.key.clone()]);
    }
    if let Ok(exe) = fs::read_link("/proc/self/exe") {
        paths.push(exe);
    }
    paths
}

/// `dir` and the directories below it, `depth` levels deep.
fn directories(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    out.push(dir.to_path_buf());
    if depth == 0 {
        return;
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            directories(&e.path(), depth - 1, out);
        }
    }
}

/// Each existing path of `paths`, as `file` or `dir` by what it is, into `out`.
fn kinds(paths: &[PathBuf], file: u32, dir: u32, out: &mut Vec<(PathBuf, u32)>) {
    for p in paths {
        if let Ok(md) = fs::metadata(p) {
            out.push((p.clone(), if md.is_dir() { dir } else { file }));
        }
    }
}
