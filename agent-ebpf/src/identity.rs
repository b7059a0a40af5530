//! Which binary an executed file is, for the rules: by (device, inode) first; for a file a
//! watched process wrote (or a nameless one: memfd, `O_TMPFILE`), also by content — the head
//! the kernel read into `linux_binprm.buf` (`agent_common::identity`). And the marks:
//! [`mark`] records, in `WRITTEN`, every file a watched process opens for writing (LSM mode:
//! `file_open`; fallback mode: the exit of the open system calls, `mark_written`). The same
//! hooks answer the daemon's [`identify`] questions.

use agent_common::{
    event::flags,
    identity::{self, ContentKey, FileKey, Identify},
};
use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_ktime_get_ns},
    macros::{map, tracepoint},
    maps::{Array, PerCpuArray},
    programs::TracePointContext,
};

use crate::{
    exec,
    kernel::{self, Bprm},
    maps::{CONTENTS, MARKS, MARKS_LOST, WRITTEN},
    rules::{self, NO_BINARY},
    Error, SYS_EXIT_RET,
};

/// `BPF_NOEXIST` (uapi `linux/bpf.h`): insert only a new key.
const BPF_NOEXIST: u64 = 1;

/// `FMODE_WRITE` (`linux/fs.h`).
pub const FMODE_WRITE: u32 = 0x2;

/// Scratch for a content lookup (264 bytes: too big for the stack next to the rest).
#[map]
static CONTENT_KEY: PerCpuArray<ContentKey> = PerCpuArray::with_max_entries(1, 0);

/// The daemon's question "which identity does the kernel give this file?"
/// (`agent_common::identity::Identify`).
#[map]
static IDENTIFY: Array<Identify> = Array::with_max_entries(1, 0);

/// Answers the daemon's question when the caller is the thread asking it.
#[inline(always)]
pub fn identify(file: usize) {
    let Some(slot) = IDENTIFY.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: map value valid for this run; only the asking thread's opens write it.
    let slot = unsafe { &mut *slot };
    // The first open is the file asked about: a stacked file system (overlayfs) opens its
    // backing file afterwards, in the same thread, and that is not what an exec judges.
    if slot.tid == 0 || slot.tid != bpf_get_current_pid_tgid() as u32 || slot.ino != 0 {
        return;
    }
    if let Ok(f) = kernel::file_id(file) {
        slot.dev = f.dev;
        slot.ino = f.ino;
    }
}

/// Scratch of [`opaque`].
#[map]
static IDENTITY: PerCpuArray<[u32; 2]> = PerCpuArray::with_max_entries(1, 0);

/// What the rules see of an executed file.
#[derive(Clone, Copy)]
pub struct Identity {
    /// Binary id (by inode, else by content), or [`NO_BINARY`].
    pub binary: u32,
    /// `flags::AGENT_WRITTEN`, `flags::COPY`.
    pub flags: u32,
    /// The file's write stamp ([`stamp`]).
    pub stamp: u64,
}

/// The identity of the file `b` runs, under policy generation `generation`.
#[inline(always)]
pub fn of_exec(generation: u32, b: &Bprm) -> Result<Identity, Error> {
    let binary = rules::binary_id(generation, b.file.dev, b.file.ino);
    let stamp = stamp(b.file.dev, b.file.ino);
    let written = agent_written(b.links, stamp);
    let mut id = Identity {
        binary,
        flags: if written { flags::AGENT_WRITTEN } else { 0 },
        stamp,
    };
    if binary == NO_BINARY && (written || marks_may_be_lost()) {
        let copy_of = by_content(generation, b.ptr)?;
        if copy_of != NO_BINARY {
            id.binary = copy_of;
            id.flags |= flags::COPY;
        }
    }
    opaque(id)
}

/// Round trip through [`IDENTITY`]: the verifier sees what follows with one identity it knows
/// nothing about, instead of once per way the identity was found (a constant each, which the
/// 5.10 verifier marks precise at the first branch on it, multiplying every state after it).
#[inline(always)]
fn opaque(id: Identity) -> Result<Identity, Error> {
    let slot = IDENTITY.get_ptr_mut(0).ok_or(Error::Map)?;
    // SAFETY: per-CPU value of this program run; volatile, so the compiler keeps the loads.
    unsafe {
        core::ptr::write_volatile(slot, [id.binary, id.flags]);
        let [binary, flags] = core::ptr::read_volatile(slot);
        Ok(Identity {
            binary,
            flags,
            stamp: id.stamp,
        })
    }
}

/// A file a session wrote, or one without a name (memfd, `O_TMPFILE`, unlinked): `links` is
/// its link count, `stamp` its [`stamp`].
#[inline(always)]
pub fn agent_written(links: u32, stamp: u64) -> bool {
    links == 0 || stamp != 0
}

/// Whether so many files were marked that the oldest marks may have been evicted
/// (`identity::MARKS_SAFE`); a flag that cannot be read says yes.
#[inline(always)]
pub fn marks_may_be_lost() -> bool {
    MARKS_LOST.get(1).is_none_or(|&lost| lost != 0)
}

/// Counts a new mark on this CPU; at the daemon's per-CPU threshold, says that marks may be
/// lost. Per-CPU counts need no atomics (a BPF program does not migrate while it runs), and
/// when the marks given since the map was created reach `MARKS_SAFE`, at least one CPU's
/// share reached `MARKS_SAFE / CPUs`.
#[inline(always)]
fn count_mark() {
    let Some(count) = MARKS.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: this CPU's value, used by this program run only.
    let count = unsafe { &mut *count };
    *count += 1;
    if *count >= MARKS_LOST.get(0).copied().unwrap_or(0) {
        if let Some(lost) = MARKS_LOST.get_ptr_mut(1) {
            // SAFETY: an aligned u64 in a map value; every writer stores the same 1.
            unsafe { core::ptr::write_volatile(lost, 1) };
        }
    }
}

/// The file's write stamp: when a watched process last opened it for writing (as far as the
/// marks remember), else 0. The kernel refuses to run a file while it is open for writing
/// (`ETXTBSY`), so the bytes an exec runs are those written before its stamp.
#[inline(always)]
pub fn stamp(dev: u64, ino: u64) -> u64 {
    // SAFETY: plain u64 copied out.
    unsafe { WRITTEN.get(&FileKey { dev, ino }) }
        .copied()
        .unwrap_or(0)
}

/// The binary id whose normalised head equals this exec's, or [`NO_BINARY`].
#[inline(always)]
fn by_content(generation: u32, bprm: usize) -> Result<u32, Error> {
    let key = CONTENT_KEY.get_ptr_mut(0).ok_or(Error::Map)?;
    // SAFETY: per-CPU scratch, used by this program run only.
    let key = unsafe { &mut *key };
    key.generation = generation;
    key._pad = 0;
    kernel::bprm_head(bprm, &mut key.head)?;
    if !identity::is_elf64(&key.head) {
        return Ok(NO_BINARY);
    }
    identity::normalise(&mut key.head);
    // SAFETY: plain u32 copied out.
    Ok(unsafe { CONTENTS.get(key) }.copied().unwrap_or(NO_BINARY))
}

/// Marks `file` as written when the caller is watched and opened it for writing. Errors mark
/// nothing: a mark only ever adds checks.
#[inline(always)]
pub fn mark(file: usize) {
    if matches!(kernel::file_mode(file), Ok(mode) if mode & FMODE_WRITE != 0) {
        mark_writable(file);
    }
}

/// [`mark`] for a file known to be open for writing.
#[inline(always)]
pub fn mark_writable(file: usize) {
    let Ok(Some(_)) = exec::watched() else {
        return;
    };
    let Ok(f) = kernel::file_id(file) else {
        return;
    };
    let key = FileKey {
        dev: f.dev,
        ino: f.ino,
    };
    // SAFETY: helper without arguments.
    let now = unsafe { bpf_ktime_get_ns() };
    // A mark already there gets the new stamp in place (which cannot fail) and is not counted
    // again; a new key is counted.
    if let Some(old) = WRITTEN.get_ptr_mut(&key) {
        // SAFETY: an aligned u64 in a map value; a racing writer stores a stamp as new.
        unsafe { core::ptr::write_volatile(old, now) };
    } else if WRITTEN.insert(&key, &now, BPF_NOEXIST).is_ok() {
        count_mark();
    }
}

/// Fallback mode: `syscalls/sys_exit_{open,openat,openat2,creat}` — the descriptor the call
/// returned, looked up in the caller's file table.
#[tracepoint]
pub fn mark_written(ctx: TracePointContext) -> u32 {
    // SAFETY: `ret` of `struct trace_event_raw_sys_exit`.
    let Ok(fd) = (unsafe { ctx.read_at::<i64>(SYS_EXIT_RET) }) else {
        return 0;
    };
    if fd < 0 {
        return 0;
    }
    if let Ok(file) = kernel::fd_file(kernel::current_task(), fd as u64) {
        identify(file);
        mark(file);
    }
    0
}
