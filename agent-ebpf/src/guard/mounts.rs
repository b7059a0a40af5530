//! No mounting or unmounting of the file systems that hold the session's cgroups, the pins,
//! or the kernel's tracing and security controls (`agent_common::tamper::magic`): unmounting
//! the last bpf file system would drop the pins, and with them the programs.

use agent_common::tamper::{magic, Tamper};
use aya_ebpf::{macros::lsm, programs::LsmContext};

use super::{judge, Attempt, Target};
use crate::{kernel, Error};

/// `sb_kern_mount(struct super_block *sb)`: a new mount of a file system (`mount(2)`).
#[lsm(hook = "sb_kern_mount")]
pub fn sb_kern_mount(ctx: LsmContext) -> i32 {
    judge(guarded(Tamper::Mount, kernel::sb_magic(ctx.arg(0))))
}

/// `move_mount(const struct path *from, const struct path *to)`: attaching a mount made with
/// `fsmount(2)` or `open_tree(2)`, or moving one.
#[lsm(hook = "move_mount")]
pub fn move_mount(ctx: LsmContext) -> i32 {
    judge(guarded(Tamper::Mount, kernel::path_magic(ctx.arg(0))))
}

/// `sb_umount(struct vfsmount *mnt, int flags)`.
#[lsm(hook = "sb_umount")]
pub fn sb_umount(ctx: LsmContext) -> i32 {
    judge(guarded(Tamper::Unmount, kernel::mount_magic(ctx.arg(0))))
}

#[inline(always)]
fn guarded(what: Tamper, m: Result<u64, Error>) -> Option<Attempt> {
    match m {
        Ok(m) if magic::guarded(m) => Some(Attempt::new(
            what,
            Target {
                ino: m,
                ..Target::default()
            },
        )),
        Ok(_) => None,
        // Could not tell: a watched caller is refused, any other is not.
        Err(_) => Some(Attempt::unreadable(what)),
    }
}
