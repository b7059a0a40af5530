//! No way out of the session: moving processes between cgroups (`cgroup.procs`,
//! `cgroup.threads`) and `clone3(CLONE_INTO_CGROUP)`; and no writing any other cgroup control
//! file (`cgroup.kill` or `cgroup.freeze` of the daemon's cgroup would kill or freeze it
//! without a signal). A session process may still create cgroups below its own (the daemon
//! caps their depth); it cannot move anything into them nor configure them.

use agent_common::tamper::{magic, Tamper};
use aya_ebpf::{helpers::bpf_probe_read_kernel_str_bytes, macros::lsm, programs::LsmContext};

use super::{files, judge, Attempt, Target};
use crate::{kernel, Error};

/// `FMODE_WRITE` (`linux/fs.h`).
const FMODE_WRITE: u32 = 0x2;
/// `CLONE_INTO_CGROUP` (uapi `linux/sched.h`, 5.7+).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `file_open(struct file *file)`, opened for writing: a file of a cgroup file system, or one
/// of the daemon's files (`files::written`).
#[lsm(hook = "file_open")]
pub fn file_open(ctx: LsmContext) -> i32 {
    // Could not tell: a watched caller is refused, any other is not.
    judge(
        opened_for_writing(ctx.arg(0))
            .unwrap_or_else(|_| Some(Attempt::unreadable(Tamper::CgroupMove))),
    )
}

#[inline(always)]
fn opened_for_writing(file: usize) -> Result<Option<Attempt>, Error> {
    if kernel::file_mode(file)? & FMODE_WRITE == 0 {
        return Ok(None);
    }
    let dentry = kernel::file_dentry(file)?;
    let m = kernel::file_magic(file)?;
    if m != magic::CGROUP2 && m != magic::CGROUP {
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
