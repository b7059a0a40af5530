//! Arguments of an exec: captured from user memory at syscall entry, and again from the new
//! image's stack after the exec commits.
//!
//! Every loop here has a constant trip count and no data-dependent branch in its body, so the
//! verifier's work stays small and the same on every kernel: each argument is read into its
//! own zeroed 64-byte slot (hashed for rule matching), and argv[1..] is also read into one
//! zeroed contiguous buffer (hashed for the fingerprint and copied into events).

use agent_common::{hash, ARGV_LEN, ARG_SLOT, MAX_ARGS};
use aya_ebpf::{
    bindings::BPF_ANY,
    helpers::{bpf_probe_read_user, generated as gen},
    macros::map,
    maps::{LruHashMap, PerCpuArray},
};

use crate::Error;

/// argv captured at syscall entry, by thread id, until the exec commits (LRU: an exec that
/// fails leaves an entry behind; the LRU evicts it). Pinned: a restarted daemon keeps the
/// captures of execs in flight.
#[map]
pub static PENDING_EXEC: LruHashMap<u32, Argv> = LruHashMap::pinned(8192, 0);

/// Per-CPU scratch space for big values that do not fit the 512-byte BPF stack.
#[map]
pub static SCRATCH_ARGV: PerCpuArray<Argv> = PerCpuArray::with_max_entries(1, 0);

/// All zeroes, never written: the source for clearing scratch memory in one helper call.
#[map]
pub static ZEROES: PerCpuArray<[u8; 2048]> = PerCpuArray::with_max_entries(1, 0);

/// Most argv pointers read; more arguments mark the capture truncated.
const MAX_ARG_PTRS: u32 = 32;

/// Bit of [`Argv::state`]: the exec decision was deferred until the new image's arguments
/// can be read.
pub const DEFERRED: u32 = 1;
/// Bit of [`Argv::state`]: the arguments were captured (not just a deferral marker).
pub const CAPTURED: u32 = 2;
/// Bit of [`Argv::state`] while capturing: the end of argv was reached.
const DONE: u32 = 4;

/// A captured argument vector.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Argv {
    /// Hash of each argument's slot ([`agent_common::hash::slot_hash`]).
    pub hashes: [u64; MAX_ARGS],
    /// Hash of argv[1..] ([`agent_common::hash::tail_hash`]).
    pub tail_hash: u64,
    /// Number of arguments (counted up to `MAX_ARG_PTRS`).
    pub argc: u32,
    /// Bit i: argument i fit its slot whole (so its hash can be compared).
    pub whole: u32,
    /// Bytes used in `tail`.
    pub len: u32,
    /// Non-zero when argv[1..] did not fit `tail` or had more than `MAX_ARG_PTRS` arguments.
    pub truncated: u32,
    /// [`DEFERRED`], [`CAPTURED`].
    pub state: u32,
    /// Alignment only.
    pub _pad: u32,
    /// One zero-padded slot per argument.
    pub slots: [[u8; ARG_SLOT]; MAX_ARGS],
    /// argv[1..], NUL-separated; twice `ARGV_LEN` so that a read at any offset below
    /// `ARGV_LEN` stays inside the buffer (what the verifier needs to see).
    pub tail: [u8; ARGV_LEN * 2],
}

/// A cleared [`Argv`] in per-CPU scratch memory (too big for the stack).
#[inline(always)]
pub fn scratch() -> Result<&'static mut Argv, Error> {
    let p = SCRATCH_ARGV.get_ptr_mut(0).ok_or(Error::Map)?;
    // SAFETY: per-CPU scratch, used by one program invocation at a time on this CPU.
    let a = unsafe { &mut *p };
    a.argc = 0;
    a.whole = 0;
    a.len = 0;
    a.truncated = 0;
    a.state = 0;
    a.tail_hash = 0;
    Ok(a)
}

/// Bytes cleared before a capture: every slot and the hashed part of the tail, which are
/// adjacent in [`Argv`].
const CLEARED: usize = MAX_ARGS * ARG_SLOT + ARGV_LEN;

/// Zeroes what the hashes cover with one helper call from an all-zero map (a store loop would
/// cost the verifier thousands of instructions).
#[inline(always)]
fn clear(a: &mut Argv) -> Result<(), Error> {
    let zero = ZEROES.get_ptr(0).ok_or(Error::Map)?;
    // SAFETY: both sides are map memory of at least CLEARED bytes (slots and tail are adjacent).
    let r = unsafe {
        gen::bpf_probe_read_kernel(
            a.slots.as_mut_ptr() as *mut _,
            CLEARED as u32,
            zero as *const _,
        )
    };
    if r < 0 {
        return Err(Error::KernelRead);
    }
    Ok(())
}

/// Captures the NULL-terminated array of user string pointers at `argv` into `a`.
///
/// Written for the verifier: one loop with a constant trip count and no early exit, every
/// running value kept in map memory (volatile), so that all paths through an iteration meet
/// again at the next one with the same registers and are pruned.
#[inline(always)]
pub fn capture(a: &mut Argv, argv: *const *const u8) -> Result<(), Error> {
    clear(a)?;
    let mut i = 0u32;
    while i <= MAX_ARG_PTRS {
        if get(&a.state) & DONE == 0 {
            // SAFETY: the helper validates the user address.
            let p: *const u8 =
                unsafe { bpf_probe_read_user(argv.add(i as usize)) }.unwrap_or(core::ptr::null());
            if p.is_null() {
                let v = get(&a.state) | DONE;
                put(&mut a.state, v);
            } else if i == MAX_ARG_PTRS {
                put(&mut a.truncated, 1);
                let v = get(&a.state) | DONE;
                put(&mut a.state, v);
            } else {
                put(&mut a.argc, i + 1);
                read_arg(a, i, p);
            }
        }
        i += 1;
    }
    finish(a);
    Ok(())
}

/// Reads argument `i` into its slot and, from argv[1] on, onto the tail.
#[inline(always)]
fn read_arg(a: &mut Argv, i: u32, p: *const u8) {
    if (i as usize) < MAX_ARGS {
        let slot = a.slots[(i as usize) & (MAX_ARGS - 1)].as_mut_ptr();
        // SAFETY: the helper validates the user address and writes at most ARG_SLOT bytes.
        let n =
            unsafe { gen::bpf_probe_read_user_str(slot as *mut _, ARG_SLOT as u32, p as *const _) };
        if n > 0 && (n as usize) < ARG_SLOT {
            let v = get(&a.whole) | (1 << i);
            put(&mut a.whole, v);
        }
    }
    if i == 0 {
        return;
    }
    if get(&a.len) as usize >= ARGV_LEN {
        put(&mut a.truncated, 1);
        return;
    }
    // A second (volatile) read, masked: the compiler cannot prove the mask redundant and drop
    // it, and older verifiers need to see it (they lose the bound of a spilled register).
    let off = get(&a.len) as usize & (ARGV_LEN - 1);
    // SAFETY: off < ARGV_LEN and the read is at most ARGV_LEN bytes: inside `tail`.
    let n = unsafe {
        let dst = a.tail.as_mut_ptr().add(off);
        gen::bpf_probe_read_user_str(dst as *mut _, ARGV_LEN as u32, p as *const _)
    };
    if n <= 0 {
        put(&mut a.truncated, 1);
        return;
    }
    let len = off as u32 + n as u32;
    if len >= ARGV_LEN as u32 {
        // The end reached ARGV_LEN: the capture holds exactly the first ARGV_LEN bytes, and a
        // full buffer cannot tell an argument that fit from a longer one cut to fit (the
        // helper returns the same count), so the capture is not the whole operation.
        put(&mut a.len, ARGV_LEN as u32);
        put(&mut a.truncated, 1);
    } else {
        put(&mut a.len, len);
    }
}

#[inline(always)]
fn get(v: &u32) -> u32 {
    // SAFETY: plain read of a valid reference; volatile keeps it in memory.
    unsafe { core::ptr::read_volatile(v) }
}

#[inline(always)]
fn put(v: &mut u32, x: u32) {
    // SAFETY: plain write through a valid reference; volatile keeps it in memory.
    unsafe { core::ptr::write_volatile(v, x) }
}

/// Hashes the slots and the tail, a word at a time (see `agent_common::hash`).
#[inline(always)]
fn finish(a: &mut Argv) {
    let words = a.slots.as_ptr() as *const u64;
    let mut i = 0;
    while i < MAX_ARGS {
        let mut h = hash::FNV_OFFSET;
        let mut w = 0;
        while w < ARG_SLOT / 8 {
            // SAFETY: within `slots`.
            h = hash::mix_word(h, unsafe {
                words.add(i * ARG_SLOT / 8 + w).read_unaligned()
            });
            w += 1;
        }
        a.hashes[i] = hash::finish_arg(h);
        i += 1;
    }
    let words = a.tail.as_ptr() as *const u64;
    let mut h = hash::FNV_OFFSET;
    let mut w = 0;
    while w < ARGV_LEN / 8 {
        // SAFETY: within `tail`.
        h = hash::mix_word(h, unsafe { words.add(w).read_unaligned() });
        w += 1;
    }
    a.tail_hash = hash::mix_word(hash::finish_arg(h), get(&a.len) as u64);
    let v = get(&a.state) | CAPTURED;
    put(&mut a.state, v);
}

/// 1 when argument `i` was captured whole (its hash can be compared), else 0. Computed
/// without a branch so that the verifier does not split its states on it.
#[inline(always)]
pub fn known(a: &Argv, i: usize) -> u64 {
    ((a.whole >> i) & 1) as u64
}

impl agent_common::matching::Args for Argv {
    #[inline(always)]
    fn count(&self) -> u32 {
        self.argc
    }

    #[inline(always)]
    fn known(&self, i: usize) -> u64 {
        known(self, i)
    }

    #[inline(always)]
    fn hash(&self, i: usize) -> u64 {
        self.hashes[i]
    }
}

/// Fingerprint of an exec of this file with these arguments (argv[0] excluded).
#[inline(always)]
pub fn fingerprint(a: &Argv, dev: u64, ino: u64) -> u64 {
    hash::exec_fingerprint(dev, ino, a.tail_hash)
}

/// Whether the arguments of the new image are the ones the exec was judged on.
///
/// For an interpreted exec (`#!`) the kernel replaces argv[0] by the interpreter (and its
/// optional argument) and the script path, so the entry's argv[1..] must be the image's
/// arguments shifted by one or two. argv[0] is never judged and is not compared. For a plain
/// exec the whole argv[1..] is compared through its hash.
#[inline(always)]
pub fn same_args(entry: &Argv, image: &Argv, interpreted: bool) -> bool {
    if !interpreted {
        // Both the slots (what rules matched) and the tail (what the fingerprint binds) are
        // compared: each argument is read twice at entry, and a racing thread could change it
        // between the two reads.
        return entry.argc == image.argc
            && entry.tail_hash == image.tail_hash
            && shifted_equal::<0>(entry, image);
    }
    match image.argc.wrapping_sub(entry.argc) {
        1 => shifted_equal::<1>(entry, image),
        2 => shifted_equal::<2>(entry, image),
        _ => false,
    }
}

/// argv[i] of the entry equals argv[i + S] of the image for every captured i ≥ 1. A constant
/// shift keeps every index a constant for the verifier.
#[inline(always)]
fn shifted_equal<const S: usize>(entry: &Argv, image: &Argv) -> bool {
    let mut i = 1usize;
    while i + S < MAX_ARGS {
        if (i as u32) < entry.argc && entry.hashes[i] != image.hashes[i + S] {
            return false;
        }
        i += 1;
    }
    true
}

/// Stores the capture for the exec's later stages.
#[inline(always)]
pub fn remember(tid: u32, a: &Argv) -> Result<(), Error> {
    PENDING_EXEC
        .insert(&tid, a, BPF_ANY as u64)
        .map_err(|_| Error::Map)
}
