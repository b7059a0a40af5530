//! Grants: the kernel side of retry tokens.
//!
//! A grant lets exactly one operation (by fingerprint) through in one scope (an agent session
//! cgroup or a whole agent group). A grant of N uses is written as N one-use slots; the kernel
//! claims a slot by deleting it, which succeeds for exactly one of two racing processes (a map
//! delete is atomic), so a one-shot grant cannot be used twice. A grant with `uses == 0` is
//! valid for any number of uses until it expires and is never deleted by the kernel.

/// Most one-use slots a grant may have.
pub const MAX_GRANT_SLOTS: u32 = 8;

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GrantKey {
    /// cgroup id of the scope: an agent session cgroup or an agent group cgroup.
    pub scope: u64,
    pub fingerprint: u64,
    /// Slot number, `0..MAX_GRANT_SLOTS`.
    pub slot: u32,
    /// Alignment only.
    pub _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    /// CLOCK_MONOTONIC nanoseconds after which the grant is void.
    pub expires_ns: u64,
    /// Identifier reported in the `GRANT_USED` event (links the use to the approval).
    pub grant_id: u64,
    /// 1 for a one-use slot (consumed by deletion); 0 for unlimited uses until expiry.
    pub uses: u32,
    /// Alignment only.
    pub _pad: u32,
}

const _: () = assert!(core::mem::size_of::<GrantKey>() == 24);
const _: () = assert!(core::mem::size_of::<Grant>() == 24);
