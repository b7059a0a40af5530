//! Whether one compiled rule slot matches an operation: the matcher the kernel programs run
//! (`agent-ebpf/src/rules.rs` scans the map slots and asks these functions), and the one the
//! policy crate's twin test runs over the compiled maps to check that compilation and
//! userspace matching (`policy::matching`) agree. One copy, so the two cannot drift.
//!
//! Everything is `#[inline(always)]` and branch-light: the kernel calls these from its own
//! `#[inline(never)]` BPF functions, one per slot, so the verifier sees a small program per
//! slot whatever is written here.

use crate::{
    hash::ANY_ARG,
    policy::{ExecSlot, NetSlot, ANY_BINARY, ANY_GROUP, ANY_PROTOCOL, MAX_ARG_PATTERNS},
    Action,
};

/// A file the policy does not name (never equal to a rule's binary or parent id).
pub const NO_BINARY: u32 = u32::MAX;

/// [`exec_slot`]: the slot does not apply (or does not beat the best rule so far).
pub const NO_MATCH: u32 = 0;
/// [`exec_slot`]: the slot matches and beats the best rule so far.
pub const MATCH: u32 = 1;
/// [`exec_slot`]: the slot would match but needs arguments not known yet (LSM mode, before
/// the new image's arguments can be read): the decision is deferred.
pub const DEFER: u32 = 3;

/// An exec's arguments as the kernel captured them.
pub trait Args {
    /// argc, argv[0] included.
    fn count(&self) -> u32;
    /// 1 when argument `i` was captured whole (its hash can be compared), else 0.
    fn known(&self, i: usize) -> u64;
    /// The hash of argument `i`'s slot (meaningful when [`Args::known`]).
    fn hash(&self, i: usize) -> u64;
}

/// Whether exec slot `s` applies to an exec by a process of group `group` whose parent runs
/// binary `parent` ([`NO_BINARY`] when the policy does not name it), with arguments `args`
/// (None while not known), and beats the best rule so far (`best_rule`, 0 for none):
/// [`NO_MATCH`], [`MATCH`] or [`DEFER`].
#[inline(always)]
pub fn exec_slot<A: Args>(
    s: &ExecSlot,
    group: u32,
    parent: u32,
    args: Option<&A>,
    best_rule: u32,
) -> u32 {
    if !(best_rule == 0 || s.rule < best_rule) {
        return NO_MATCH;
    }
    if s.group != ANY_GROUP && s.group != group {
        return NO_MATCH;
    }
    if s.parent != ANY_BINARY && s.parent != parent {
        return NO_MATCH;
    }
    match args {
        None if s.nargs > 0 => DEFER,
        None => MATCH,
        Some(a) => (a.count() > s.nargs && !args_fail(a, &s.args, s.action)) as u32,
    }
}

/// Whether the arguments fail any of the patterns. A pattern `ANY_ARG` always holds. An
/// argument not captured whole cannot be compared: it holds for a rule that refuses and fails
/// for one that allows, so a long command line never turns a refusal into an allow.
#[inline(always)]
pub fn args_fail<A: Args>(a: &A, patterns: &[u64; MAX_ARG_PATTERNS], action: u32) -> bool {
    let allows = action != Action::Deny as u32 && action != Action::Approve as u32;
    let mut i = 0;
    while i < MAX_ARG_PATTERNS {
        let p = patterns[i];
        if p != ANY_ARG {
            let fail = if a.known(i + 1) != 0 {
                p != a.hash(i + 1)
            } else {
                allows
            };
            if fail {
                return true;
            }
        }
        i += 1;
    }
    false
}

/// Whether network slot `s` applies to a connect by a process of group `group` to `port`
/// over `protocol`, and beats the best rule so far (`best_rule`, 0 for none): 1 or 0. The
/// address was matched by the map's longest-prefix lookup.
#[inline(always)]
pub fn net_slot(s: &NetSlot, group: u32, port: u16, protocol: u16, best_rule: u32) -> u32 {
    ((best_rule == 0 || s.rule < best_rule)
        && (s.group == ANY_GROUP || s.group == group)
        && (s.protocol == ANY_PROTOCOL || s.protocol == protocol)
        && port >= s.port_lo
        && port <= s.port_hi) as u32
}
