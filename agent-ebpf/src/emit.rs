//! Filling and sending event records.

use agent_common::{
    event::{Event, EventKind},
    policy::stats,
    ARGV_LEN,
};
use aya_ebpf::{
    helpers::{
        bpf_get_current_cgroup_id, bpf_get_current_comm, bpf_get_current_pid_tgid,
        bpf_get_current_uid_gid, bpf_ktime_get_ns, bpf_probe_read_kernel_buf,
        bpf_probe_read_kernel_str_bytes,
    },
    maps::ring_buf::RingBufEntry,
};

use crate::{
    argv::Argv,
    enforce::Outcome,
    evidence,
    maps::{count, EVENTS},
    rules::Verdict,
    watch::Watched,
};

/// A reserved event with the fields every kind shares filled in; the caller adds its own and
/// submits. Counts the operation in its session's evidence first. None when the session is
/// over its event rate or the ring buffer is full (counted either way; the decision stands).
#[inline(always)]
pub fn start(
    kind: EventKind,
    w: &Watched,
    v: &Verdict,
    o: &Outcome,
) -> Option<RingBufEntry<Event>> {
    if !evidence::admit(w, o) {
        return None;
    }
    let Some(mut entry) = EVENTS.reserve::<Event>(0) else {
        count(stats::EVENTS_LOST);
        evidence::lost(w);
        return None;
    };
    let e = entry.as_mut_ptr();
    let pid_tgid = bpf_get_current_pid_tgid();
    let uid_gid = bpf_get_current_uid_gid();
    // SAFETY: `e` points at a reserved record of the right size; every field used by the
    // daemon is written below or by the caller.
    unsafe {
        (*e).ktime_ns = bpf_ktime_get_ns();
        (*e).cgroup_id = bpf_get_current_cgroup_id();
        (*e).group_cgroup_id = w.group_cgroup;
        (*e).fingerprint = 0;
        (*e).grant_id = o.grant_id;
        (*e).dev = 0;
        (*e).ino = 0;
        (*e).stamp = 0;
        (*e).kind = kind as u32;
        (*e).action = v.action;
        (*e).flags = o.flags;
        (*e).mode = w.mode;
        (*e).rule = v.rule;
        (*e).group = w.group.id;
        (*e).generation = w.generation;
        (*e).pid = pid_tgid as u32;
        (*e).tgid = (pid_tgid >> 32) as u32;
        (*e).ppid = 0;
        (*e).uid = uid_gid as u32;
        (*e).gid = (uid_gid >> 32) as u32;
        (*e).argc = 0;
        (*e).argv_len = 0;
        (*e).path_len = 0;
        (*e).detail = 0;
        (*e).port = 0;
        (*e).family = 0;
        (*e).protocol = 0;
        (*e)._pad0 = 0;
        (*e).addr = [0; 16];
        (*e).argv0[0] = 0;
        (*e).comm = bpf_get_current_comm().unwrap_or_default();
    }
    Some(entry)
}

/// Copies the arguments of `a` into the event.
#[inline(always)]
pub fn set_argv(e: *mut Event, a: &Argv) {
    // SAFETY: `e` is a reserved record; the copy sizes are constants.
    unsafe {
        if bpf_probe_read_kernel_buf(a.slots[0].as_ptr(), &mut (*e).argv0).is_err() {
            (*e).argv0[0] = 0;
        }
        let tail = a.tail.as_ptr();
        if bpf_probe_read_kernel_buf(tail, &mut (*e).argv).is_ok() {
            (*e).argv_len = if a.len as usize > ARGV_LEN {
                ARGV_LEN as u32
            } else {
                a.len
            };
        }
        (*e).argc = a.argc;
        if a.truncated != 0 {
            (*e).flags |= agent_common::event::flags::ARGV_TRUNCATED;
        }
    }
}

/// Copies a kernel string (e.g. `bprm->interp`) into the event's path.
#[inline(always)]
pub fn set_kernel_path(e: *mut Event, s: usize) {
    // SAFETY: the helper validates the kernel address.
    unsafe {
        if let Ok(b) = bpf_probe_read_kernel_str_bytes(s as *const u8, &mut (*e).path) {
            (*e).path_len = b.len() as u32;
        }
    }
}
