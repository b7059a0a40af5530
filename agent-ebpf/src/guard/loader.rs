//! The dynamic loader is not a way around exec rules: `ld.so BINARY` runs a binary without
//! executing it (the kernel sees ld.so executed, and ld.so maps the binary itself). A watched
//! process may not map executable — `mmap` or `mprotect` with `PROT_EXEC` — a file that an exec
//! rule denies or sends to approval, except as its own program (the exec that was judged maps
//! it). Shared libraries that no rule names cost a lookup. What this does not stop: the bytes
//! copied to another file or to anonymous memory (docs/operations.md, `copied_binaries`).

use agent_common::{policy::STATE_INDEX, tamper::Tamper};
use aya_ebpf::{macros::lsm, programs::LsmContext};

use super::{judge, Attempt, Target};
use crate::{kernel, maps::STATE, rules};

/// `PROT_EXEC` (uapi `asm-generic/mman-common.h`).
const PROT_EXEC: u64 = 0x4;

/// `mmap_file(struct file *file, unsigned long reqprot, unsigned long prot, unsigned long
/// flags)`: `prot` is what the mapping gets (`reqprot` may lack an implied `PROT_EXEC`).
#[lsm(hook = "mmap_file")]
pub fn mmap_file(ctx: LsmContext) -> i32 {
    let prot: u64 = ctx.arg(2);
    if prot & PROT_EXEC == 0 {
        return 0;
    }
    judge(mapped(ctx.arg(0)))
}

/// `file_mprotect(struct vm_area_struct *vma, unsigned long reqprot, unsigned long prot)`: a
/// mapping made readable first and executable afterwards.
#[lsm(hook = "file_mprotect")]
pub fn file_mprotect(ctx: LsmContext) -> i32 {
    let prot: u64 = ctx.arg(2);
    if prot & PROT_EXEC == 0 {
        return 0;
    }
    judge(match kernel::vma_file(ctx.arg(0)) {
        Ok(file) => mapped(file),
        Err(_) => Some(Attempt::unreadable(Tamper::Loader)),
    })
}

/// The attempt, when `file` (0: anonymous memory) is a binary an exec rule guards and not the
/// caller's own program.
#[inline(always)]
fn mapped(file: usize) -> Option<Attempt> {
    if file == 0 {
        return None;
    }
    let id = match kernel::file_id(file) {
        Ok(id) => id,
        Err(_) => return Some(Attempt::unreadable(Tamper::Loader)),
    };
    let state = STATE.get(STATE_INDEX)?;
    let generation = state.active & 1;
    let binary = rules::binary_id(generation, id.dev, id.ino);
    if binary == rules::NO_BINARY || !rules::guarded_binary(generation, binary) {
        return None;
    }
    if let Ok(Some(own)) = kernel::exe_id(kernel::current_task()) {
        if own.dev == id.dev && own.ino == id.ino {
            return None;
        }
    }
    Some(Attempt::new(
        Tamper::Loader,
        Target {
            dev: id.dev,
            ino: id.ino,
            name: kernel::file_dentry(file)
                .and_then(kernel::dentry_name)
                .unwrap_or(0),
            ..Target::default()
        },
    ))
}
