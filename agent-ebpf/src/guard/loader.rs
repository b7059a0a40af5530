//! The dynamic loader is not a way around exec rules: `ld.so BINARY` runs a binary without
//! executing it (the kernel sees ld.so executed, and ld.so maps the binary itself). A watched
//! process may not map executable — `mmap` or `mprotect` with `PROT_EXEC` — a file that an exec
//! rule denies or sends to approval, except as its own program (the exec that was judged maps
//! it). Shared libraries that no rule names cost a lookup. A copy of a guarded binary is known
//! by its content only at an exec (`identity`): run through the loader, whose mapping shows no
//! content to a BPF program, a file a session wrote (or a memfd) may not be mapped by a dynamic
//! loader run as the program itself (`ld.so FILE`), whatever it holds. What this does not stop:
//! the bytes copied to anonymous memory, or a loader the agent wrote itself
//! (docs/architecture.md, "Identity of executables").

use agent_common::{
    identity::FileKey,
    policy::STATE_INDEX,
    tamper::{loader, Tamper},
};
use aya_ebpf::{macros::lsm, programs::LsmContext};

use super::{judge, Attempt, Target};
use crate::{
    identity, kernel,
    maps::{LOADERS, STATE},
    rules,
};

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
/// caller's own program. Also fallback mode's, at the entry of `mmap` (`syscalls`).
#[inline(always)]
pub fn mapped(file: usize) -> Option<Attempt> {
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
    let guarded = binary != rules::NO_BINARY && rules::guarded_binary(generation, binary);
    // A file without a name counts as written; a link count that cannot be read does not.
    // When marks may have been evicted, any file may be a session's: a loader run as a
    // program then maps nothing (it fails: closed).
    if !guarded
        && !identity::agent_written(
            kernel::file_links(file).unwrap_or(1),
            identity::stamp(id.dev, id.ino),
        )
        && !identity::marks_may_be_lost()
    {
        return None;
    }
    let own = kernel::exe_id(kernel::current_task()).ok().flatten();
    if own == Some(id) {
        return None;
    }
    let what = if guarded {
        loader::GUARDED
    } else if own.is_some_and(is_loader) {
        loader::WRITTEN
    } else {
        return None;
    };
    Some(Attempt::new(
        Tamper::Loader,
        Target {
            dev: id.dev,
            ino: id.ino,
            protocol: what,
            name: kernel::file_dentry(file)
                .and_then(kernel::dentry_name)
                .unwrap_or(0),
            ..Target::default()
        },
    ))
}

/// Whether `exe` is a dynamic loader (the caller runs as `ld.so FILE`).
#[inline(always)]
fn is_loader(exe: kernel::FileId) -> bool {
    let key = FileKey {
        dev: exe.dev,
        ino: exe.ino,
    };
    // SAFETY: presence only.
    unsafe { LOADERS.get(&key) }.is_some()
}
