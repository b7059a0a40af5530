//! The maps shared with the daemon. Every map the daemon writes or reads is pinned by name, so
//! that a restarted daemon adopts the same policy, grants and pending events instead of
//! opening a gap in enforcement. Their types are `agent_common`'s; maps of the programs' own
//! types live with them (`argv`, `exec::committed`), so no module here depends back on them.

use agent_common::{
    event::Event,
    grant::{Grant, GrantKey},
    identity::{ContentKey, FileKey, MAX_WRITTEN},
    policy::{
        AccountKey, BinaryKey, ExecRules, ExecRulesKey, Group, NetKey, NetRules, State, WatchKey,
    },
    session::SessionStats,
    tamper::{delegator::NAME_MAX, GuardedFile},
};
use aya_ebpf::{
    macros::map,
    maps::{
        Array, HashMap, LpmTrie, LruHashMap, LruPerCpuHashMap, PerCpuArray, ProgramArray, RingBuf,
    },
};

/// Events to the daemon. 4 MiB holds a few thousand events while the daemon restarts.
#[map]
pub static EVENTS: RingBuf = RingBuf::pinned(4 << 20, 0);

#[map]
pub static STATE: Array<State> = Array::pinned(1, 0);

#[map]
pub static WATCHED: HashMap<WatchKey, Group> = HashMap::pinned(512, 0);

/// Accounts whose processes belong to an agent group wherever they run → the group's cgroup.
#[map]
pub static ACCOUNTS: HashMap<AccountKey, u64> = HashMap::pinned(1024, 0);

#[map]
pub static BINARIES: HashMap<BinaryKey, u32> = HashMap::pinned(8192, 0);

/// Guarded ELF binaries by normalised head (`agent_common::identity`) → binary id: how a copy
/// is recognised.
#[map]
pub static CONTENTS: HashMap<ContentKey, u32> = HashMap::pinned(8192, 0);

/// Files watched processes opened for writing (`identity::mark`); only these, and nameless
/// files, are looked up in `CONTENTS` when executed. Value: the write stamp, the
/// `bpf_ktime_get_ns()` of the last such open (grants bind it: `agent_common::grant`).
#[map]
pub static WRITTEN: LruHashMap<FileKey, u64> = LruHashMap::pinned(MAX_WRITTEN, 0);

/// New marks given by each CPU (`identity::count_mark`).
#[map]
pub static MARKS: PerCpuArray<u64> = PerCpuArray::pinned(1, 0);

/// `[per-CPU threshold (written by the daemon), 1 once a CPU's count reached it]`: from then
/// on the oldest marks may have been evicted (`agent_common::identity::MARKS_SAFE`).
#[map]
pub static MARKS_LOST: Array<u64> = Array::pinned(2, 0);

#[map]
pub static EXEC_RULES: HashMap<ExecRulesKey, ExecRules> = HashMap::pinned(4096, 0);

#[map]
pub static NET_RULES: LpmTrie<NetKey, NetRules> = LpmTrie::pinned(4096, 0);

/// Grant slots. Not preallocated (`BPF_F_NO_PREALLOC`): a deleted value is freed only after
/// every program that may hold it has finished (RCU), so a value a program compared cannot be
/// reused for another grant while it claims (`agent_common::grant`). 16384 slots of 584 bytes
/// (about 10 MiB with the kernel's per-element overhead when full; allocated as used).
#[map]
pub static GRANTS: HashMap<GrantKey, Grant> = HashMap::pinned(16384, BPF_F_NO_PREALLOC);

/// What each session's operations came to, regardless of the ring buffer
/// (`agent_common::session`).
#[map]
pub static SESSION_STATS: LruPerCpuHashMap<u64, SessionStats> =
    LruPerCpuHashMap::pinned(agent_common::session::MAX_SESSIONS, 0);

/// One-use tickets of grant slots: a slot's use is claimed by deleting its ticket.
#[map]
pub static TICKETS: HashMap<u64, u32> = HashMap::pinned(16384, 0);

/// Processes a watched process may not signal or trace: the daemon (its tgid, written by the
/// daemon itself at start; `guard::enforcer`).
#[map]
pub static PROTECTED: HashMap<u32, u32> = HashMap::pinned(16, 0);

/// Fallback mode: the guarded syscall tracepoints, by tracepoint id (`common_type`), and what
/// each guards (`agent_common::tamper::syscall`); `guard::syscalls`.
#[map]
pub static SYSCALL_GUARDS: HashMap<u32, u32> = HashMap::pinned(32, 0);

/// The dynamic loaders of this host (`identity::FileKey` → 1), written by the daemon at start:
/// one of them run as a program may not map a file a session wrote (`guard::loader`).
#[map]
pub static LOADERS: HashMap<FileKey, u32> = HashMap::pinned(16, 0);

/// The daemon's files and directories (`agent_common::tamper::GuardedFile`), written by the
/// daemon at start; `guard::files`.
#[map]
pub static GUARDED_FILES: HashMap<GuardedFile, u32> = HashMap::pinned(1024, 0);

/// Delegators' socket names (`agent_common::tamper::delegator`): a longest-prefix match on the
/// name a listening unix socket is bound to. Written by the daemon at start;
/// `guard::delegators`.
#[map]
pub static DELEGATORS: LpmTrie<[u8; NAME_MAX], u32> = LpmTrie::pinned(256, 0);

/// `BPF_F_NO_PREALLOC` (uapi `linux/bpf.h`).
const BPF_F_NO_PREALLOC: u32 = 1;

#[map]
pub static STATS: PerCpuArray<u64> = PerCpuArray::pinned(agent_common::policy::stats::COUNT, 0);

/// `exec_judge` at index 0: the second half of `sched_process_exec`. Pinned, so that the
/// pinned first half keeps reaching it while no daemon runs.
#[map]
pub static EXEC_TAIL: ProgramArray = ProgramArray::pinned(1, 0);

/// Size check of the event record as the ring buffer carries it.
const _: () = assert!(core::mem::size_of::<Event>() < 4096);

/// Adds one to a per-CPU counter.
#[inline(always)]
pub fn count(index: u32) {
    if let Some(v) = STATS.get_ptr_mut(index) {
        // SAFETY: per-CPU slot, programs do not migrate CPUs while running.
        unsafe { *v += 1 };
    }
}
