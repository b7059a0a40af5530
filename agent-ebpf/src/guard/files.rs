//! The enforcer's files. On a bpf file system nothing may be removed or renamed (the pins keep
//! the programs attached while no daemon runs). The daemon's own files and directories
//! (`GUARDED_FILES`: state and run directories, policy files, certificates, its binary) may
//! not be written, truncated, created, removed, renamed, linked or replaced; nor may the
//! spools of cron and at (`GUARDED_FILES` too), whose jobs run outside the session.
//!
//! Each hook reads the identity of the directory (and of the entry, when it exists) and looks
//! it up; only a guarded one costs the cgroup walk. `file_open` (in `session.rs`) checks
//! writes through [`written`].

use agent_common::tamper::{cgroup_dir, delegator, guarded, magic, GuardedFile, Tamper};
use aya_ebpf::{macros::lsm, programs::LsmContext};

use super::{judge, session, Attempt, Target};
use crate::{
    kernel::{self, FileId},
    maps::GUARDED_FILES,
    Error,
};

/// The identity of a target that could not be read (a watched caller is refused all the same).
const UNKNOWN: FileId = FileId { dev: 0, ino: 0 };

/// `inode_unlink(struct inode *dir, struct dentry *dentry)`.
#[lsm(hook = "inode_unlink")]
pub fn inode_unlink(ctx: LsmContext) -> i32 {
    judge(removed(ctx.arg(0), ctx.arg(1)))
}

/// `inode_rmdir(struct inode *dir, struct dentry *dentry)`.
#[lsm(hook = "inode_rmdir")]
pub fn inode_rmdir(ctx: LsmContext) -> i32 {
    judge(removed(ctx.arg(0), ctx.arg(1)))
}

/// `inode_rename(struct inode *old_dir, struct dentry *old_dentry, struct inode *new_dir,
/// struct dentry *new_dentry)`: the old name goes, the new one is created or replaced.
#[lsm(hook = "inode_rename")]
pub fn inode_rename(ctx: LsmContext) -> i32 {
    judge(removed(ctx.arg(0), ctx.arg(1)).or_else(|| changed(ctx.arg(2), ctx.arg(3))))
}

/// `inode_create(struct inode *dir, struct dentry *dentry, umode_t mode)`.
#[lsm(hook = "inode_create")]
pub fn inode_create(ctx: LsmContext) -> i32 {
    judge(changed(ctx.arg(0), ctx.arg(1)))
}

/// `inode_mkdir(struct inode *dir, struct dentry *dentry, umode_t mode)`: on a cgroup file
/// system, a new cgroup (`session::cgroup_dir`).
#[lsm(hook = "inode_mkdir")]
pub fn inode_mkdir(ctx: LsmContext) -> i32 {
    let (dir, dentry) = (ctx.arg(0), ctx.arg(1));
    judge(match kernel::inode_magic(dir) {
        Ok(m) if magic::cgroup(m) => session::cgroup_dir(dentry, cgroup_dir::CREATE, m),
        Ok(_) => changed(dir, dentry),
        Err(_) => Some(file(UNKNOWN, dentry)),
    })
}

/// `inode_mknod(struct inode *dir, struct dentry *dentry, umode_t mode, dev_t dev)`.
#[lsm(hook = "inode_mknod")]
pub fn inode_mknod(ctx: LsmContext) -> i32 {
    judge(changed(ctx.arg(0), ctx.arg(1)))
}

/// `inode_symlink(struct inode *dir, struct dentry *dentry, const char *old_name)`.
#[lsm(hook = "inode_symlink")]
pub fn inode_symlink(ctx: LsmContext) -> i32 {
    judge(changed(ctx.arg(0), ctx.arg(1)))
}

/// `inode_link(struct dentry *old_dentry, struct inode *dir, struct dentry *new_dentry)`: a
/// hard link to a guarded file would be a second name to write it through.
#[lsm(hook = "inode_link")]
pub fn inode_link(ctx: LsmContext) -> i32 {
    let old: usize = ctx.arg(0);
    judge(written(old).or_else(|| changed(ctx.arg(1), ctx.arg(2))))
}

/// `path_truncate(const struct path *path)`: `truncate(2)` by name.
#[lsm(hook = "path_truncate")]
pub fn path_truncate(ctx: LsmContext) -> i32 {
    judge(match kernel::path_dentry(ctx.arg(0)) {
        Ok(dentry) => written(dentry),
        Err(_) => Some(file(UNKNOWN, 0)),
    })
}

/// A write to the file `dentry`: an attempt when the file or the directory it is in is
/// guarded (`file_open` for writing, `truncate`, the old name of a hard link).
#[inline(always)]
pub fn written(dentry: usize) -> Option<Attempt> {
    attempt(
        kernel::parent_inode(dentry).and_then(|dir| entry(dir, dentry)),
        dentry,
    )
}

/// The entry `dentry` of `dir` goes away (unlink, rmdir, the old name of a rename). On a bpf
/// file system that is a pin, whatever it is; on a cgroup file system, a cgroup.
#[inline(always)]
fn removed(dir: usize, dentry: usize) -> Option<Attempt> {
    match kernel::inode_magic(dir) {
        Ok(magic::BPF_FS) => Some(Attempt::new(
            Tamper::PinRemoval,
            Target {
                ino: kernel::dentry_ino(dentry).unwrap_or(0),
                name: kernel::dentry_name(dentry).unwrap_or(0),
                ..Target::default()
            },
        )),
        Ok(m) if magic::cgroup(m) => session::cgroup_dir(dentry, cgroup_dir::REMOVE, m),
        Ok(_) => changed(dir, dentry),
        Err(_) => Some(Attempt::unreadable(Tamper::PinRemoval)),
    }
}

/// The entry `dentry` of `dir` is created, replaced or removed.
#[inline(always)]
fn changed(dir: usize, dentry: usize) -> Option<Attempt> {
    attempt(entry(dir, dentry), dentry)
}

/// The guarded identity that a change to the entry `dentry` of the directory inode `dir`
/// touches, and its kind: the entry's own file, or `dir` when it is a guarded directory.
#[inline(always)]
fn entry(dir: usize, dentry: usize) -> Result<Option<(FileId, u32)>, Error> {
    let inode = kernel::dentry_inode(dentry)?;
    if inode != 0 {
        let id = kernel::inode_id(inode)?;
        if let Some(kind) = lookup(id) {
            return Ok(Some((id, kind)));
        }
    }
    let dir = kernel::inode_id(dir)?;
    Ok(lookup(dir)
        .filter(|k| guarded::directory(*k))
        .map(|k| (dir, k)))
}

#[inline(always)]
fn attempt(found: Result<Option<(FileId, u32)>, Error>, dentry: usize) -> Option<Attempt> {
    match found {
        Ok(Some((id, kind))) if guarded::spool(kind) => Some(spool(id, dentry)),
        Ok(Some((id, _))) => Some(file(id, dentry)),
        Ok(None) => None,
        Err(_) => Some(file(UNKNOWN, dentry)),
    }
}

/// A change to a delegator's spool (`id`) through the name `dentry`: a job that would run
/// outside the session.
#[inline(always)]
fn spool(id: FileId, dentry: usize) -> Attempt {
    Attempt::new(
        Tamper::Delegator,
        Target {
            dev: delegator::SPOOL,
            ino: id.ino,
            name: kernel::dentry_name(dentry).unwrap_or(0),
            ..Target::default()
        },
    )
}

#[inline(always)]
fn lookup(id: FileId) -> Option<u32> {
    let key = GuardedFile {
        dev: id.dev,
        ino: id.ino,
    };
    // SAFETY: plain value copied out.
    unsafe { GUARDED_FILES.get(&key).copied() }
}

/// A change to the guarded `id` through the name `dentry` (0: unknown).
#[inline(always)]
fn file(id: FileId, dentry: usize) -> Attempt {
    Attempt::new(
        Tamper::EnforcerFile,
        Target {
            dev: id.dev,
            ino: id.ino,
            name: if dentry == 0 {
                0
            } else {
                kernel::dentry_name(dentry).unwrap_or(0)
            },
            ..Target::default()
        },
    )
}
