//! Grants: the kernel side of retry tokens.
//!
//! A grant lets exactly one operation through in one scope (an agent session cgroup or a
//! whole agent group). The kernel finds candidate grants by `(scope, lookup hash, slot)` —
//! the hash only finds them — and then compares the grant's whole binding with the operation
//! in front of it: kind, rule, the executed file and the exact captured argument bytes and
//! length, or the exact destination address, port and protocol. A hash collision can at most
//! cost a lookup (docs/architecture.md, "Grant binding").
//!
//! A grant of N uses is written as N one-use slots, each with its own *ticket*: a random
//! 64-bit key in the `TICKETS` map that is never reused. The kernel claims a slot by deleting
//! its ticket, which succeeds for exactly one of two racing processes. Grant values are never
//! changed in place and the grant map is not preallocated, so the value a program compared
//! stays the one it claims for, for the whole program run (RCU). A grant with `ticket == 0`
//! is valid for any number of uses until it expires.

use crate::ARGV_LEN;

/// Most one-use slots a grant may have, and most live slots per (scope, lookup hash).
pub const MAX_GRANT_SLOTS: u32 = 8;

/// [`Grant::kind`]: the kinds of operation a grant can bind (the event kind numbers).
pub mod kind {
    pub const EXEC: u32 = crate::event::EventKind::Exec as u32;
    pub const CONNECT: u32 = crate::event::EventKind::Connect as u32;
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GrantKey {
    /// cgroup id of the scope: an agent session cgroup or an agent group cgroup.
    pub scope: u64,
    /// Lookup hash of the operation ([`crate::hash::exec_fingerprint`],
    /// [`crate::hash::connect_fingerprint`]): finds candidates, never decides.
    pub fingerprint: u64,
    /// Slot number, `0..MAX_GRANT_SLOTS`.
    pub slot: u32,
    /// Alignment only.
    pub _pad: u32,
}

/// One grant slot: the exact operation it lets through, and how often.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    /// CLOCK_MONOTONIC nanoseconds after which the grant is void.
    pub expires_ns: u64,
    /// Identifier reported in the `GRANT_USED` event (links the use to the approval).
    pub grant_id: u64,
    /// Key of this slot's entry in `TICKETS` (a one-use slot), or 0 (unlimited uses).
    pub ticket: u64,
    /// Exec: kernel device number and inode of the executed file.
    pub dev: u64,
    pub ino: u64,
    /// Exec: the file's write stamp when the operation was refused (`crate::identity`,
    /// `WRITTEN`): a session that opens the approved file for writing again changes it, so the
    /// grant no longer binds the rewritten bytes. 0: no mark.
    pub stamp: u64,
    /// [`kind`].
    pub kind: u32,
    /// Rule number (index + 1) that refused the operation in the policy in force.
    pub rule: u32,
    /// Exec: bytes used in `argv`.
    pub argv_len: u32,
    /// Connect: port (host byte order) and `IPPROTO_*`.
    pub port: u16,
    pub protocol: u16,
    /// Connect: IPv6 or IPv4-mapped address, network byte order.
    pub addr: [u8; 16],
    /// Exec: argv[1..] exactly as the kernel captures it (NUL-separated, zero-padded).
    pub argv: [u8; ARGV_LEN],
}

impl Grant {
    /// A grant of nothing (kind 0 matches no operation).
    pub const EMPTY: Self = Self {
        expires_ns: 0,
        grant_id: 0,
        ticket: 0,
        dev: 0,
        ino: 0,
        stamp: 0,
        kind: 0,
        rule: 0,
        argv_len: 0,
        port: 0,
        protocol: 0,
        addr: [0; 16],
        argv: [0; ARGV_LEN],
    };
}

const _: () = assert!(core::mem::size_of::<GrantKey>() == 24);
const _: () = assert!(core::mem::size_of::<Grant>() == 6 * 8 + 3 * 4 + 2 * 2 + 16 + ARGV_LEN);
const _: () = assert!(core::mem::size_of::<Grant>().is_multiple_of(8));
