//! No way out of the session: moving processes between cgroups (`cgroup.procs`,
//! `cgroup.threads`) and `clone3(CLONE_INTO_CGROUP)`; and no writing any other cgroup control
//! file (`cgroup.kill` or `cgroup.freeze` of the daemon's cgroup would kill or freeze it
//! without a signal). A session process may still create and remove cgroups below its own
//! (the daemon caps their depth), and nowhere else; it cannot move anything into them nor
//! configure them.

use agent_common::{
    tamper::{magic, Tamper},
    MAX_CGROUP_LEVEL,
};
use aya_ebpf::{helpers::bpf_probe_read_kernel_str_bytes, macros::lsm, programs::LsmContext};

use super::{files, judge, Attempt, Target};
use crate::{identity, kernel, Error};

/// `CLONE_INTO_CGROUP` (uapi `linux/sched.h`, 5.7+).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `file_open(struct file *file)`, opened for writing: a file of a cgroup file system, or one
/// of the daemon's files (`files::written`). Every file a watched process opens for writing is
/// marked (`identity::mark`).
#[lsm(hook = "file_open")]
pub fn file_open(ctx: LsmContext) -> i32 {
    let file = ctx.arg(0);
    identity::identify(file);
    let attempt = match kernel::file_mode(file) {
        Ok(mode) if mode & identity::FMODE_WRITE == 0 => return 0,
        Ok(_) => {
            identity::mark_writable(file);
            opened_for_writing(file)
        }
        Err(e) => Err(e),
    };
    // Could not tell: a watched caller is refused, any other is not.
    judge(attempt.unwrap_or_else(|_| Some(Attempt::unreadable(Tamper::CgroupMove))))
}

/// `file`, opened for writing.
#[inline(always)]
fn opened_for_writing(file: usize) -> Result<Option<Attempt>, Error> {
    let dentry = kernel::file_dentry(file)?;
    let m = kernel::file_magic(file)?;
    if !magic::cgroup(m) {
        return Ok(files::written(dentry));
    }
    cgroup_move(dentry)
}

#[inline(always)]
fn cgroup_move(dentry: usize) -> Result<Option<Attempt>, Error> {
    let name = kernel::dentry_name(dentry)?;
    let mut buf = [0u8; 16];
    // SAFETY: the helper validates the kernel address.
    let n = unsafe { bpf_probe_read_kernel_str_bytes(name as *const u8, &mut buf) }
        .map_err(|_| Error::KernelRead)?;
    let moving = n == b"cgroup.procs" || n == b"cgroup.threads" || n == b"tasks";
    Ok(Some(Attempt::new(
        if moving {
            Tamper::CgroupMove
        } else {
            Tamper::CgroupWrite
        },
        Target {
            ino: kernel::parent_ino(dentry)?,
            name,
            ..Target::default()
        },
    )))
}

/// The cgroup `dentry` is created or removed (`how`: `agent_common::tamper::cgroup_dir`) on
/// the cgroup file system of magic `fs`: an attempt unless its parent is the caller's own
/// cgroup or below it. On cgroup v1 every one is an attempt (the sessions live in v2).
#[inline(always)]
pub fn cgroup_dir(dentry: usize, how: u64, fs: u64) -> Option<Attempt> {
    let attempt = |parent_id: u64| {
        Some(Attempt::new(
            Tamper::CgroupDir,
            Target {
                ino: parent_id,
                dev: how,
                name: kernel::dentry_name(dentry).unwrap_or(0),
                ..Target::default()
            },
        ))
    };
    let parent = match kernel::dentry_parent(dentry) {
        Ok(p) => p,
        Err(_) => return attempt(0),
    };
    if fs == magic::CGROUP2 && matches!(below_own_cgroup(parent), Ok(true)) {
        return None;
    }
    attempt(kernel::dentry_ino(parent).unwrap_or(0))
}

/// Whether the cgroup v2 directory `dir` is the caller's own cgroup or below it: its
/// dentries are walked up (a cgroup directory's inode number is the cgroup's id).
#[inline(always)]
fn below_own_cgroup(mut dir: usize) -> Result<bool, Error> {
    let own = kernel::CgroupCursor::current()?.id()?;
    for _ in 0..=MAX_CGROUP_LEVEL {
        if kernel::dentry_ino(dir)? == own {
            return Ok(true);
        }
        let parent = kernel::dentry_parent(dir)?;
        if parent == dir {
            return Ok(false);
        }
        dir = parent;
    }
    Ok(false)
}

/// `task_alloc(struct task_struct *task, unsigned long clone_flags)`.
#[lsm(hook = "task_alloc")]
pub fn task_alloc(ctx: LsmContext) -> i32 {
    let clone_flags: u64 = ctx.arg(1);
    if clone_flags & CLONE_INTO_CGROUP == 0 {
        return 0;
    }
    judge(Some(Attempt::new(
        Tamper::CloneIntoCgroup,
        Target {
            dev: clone_flags,
            ..Target::default()
        },
    )))
}
