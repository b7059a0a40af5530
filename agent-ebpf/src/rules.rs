//! Matching an operation against the compiled rules of the active policy generation.

use agent_common::{
    hash::ANY_ARG,
    policy::{
        ExecRules, ExecRulesKey, ExecSlot, NetKey, NetRules, NetSlot, ANY_BINARY, ANY_GROUP,
        ANY_PROTOCOL, EXEC_SLOTS, MAX_ARG_PATTERNS, NET_GENERATION_BITS, NET_SLOTS,
    },
    Action,
};
use aya_ebpf::maps::lpm_trie::Key;

use crate::{
    argv::{known, Argv},
    maps::{BINARIES, EXEC_RULES, NET_RULES},
};

/// What the policy says: the action and the rule (index + 1; 0 for the group default).
#[derive(Clone, Copy)]
pub struct Verdict {
    pub action: u32,
    pub rule: u32,
    /// 1 when the rule that may decide needs arguments that are not known yet (LSM mode, at
    /// an interpreter level or without an entry capture): the decision moves to the moment
    /// the new image's arguments can be read (`sched_process_exec`).
    pub deferred: u32,
}

/// Binary id the policy gave a file, or [`NO_BINARY`].
#[inline(always)]
pub fn binary_id(generation: u32, dev: u64, ino: u64) -> u32 {
    let key = agent_common::policy::BinaryKey {
        generation,
        _pad: 0,
        dev,
        ino,
    };
    // SAFETY: plain u32 copied out.
    unsafe { BINARIES.get(&key).copied() }.unwrap_or(NO_BINARY)
}

/// A file the policy does not name (never equal to a rule's binary or parent id).
pub const NO_BINARY: u32 = u32::MAX;

/// Facts about an exec that rules look at.
pub struct ExecFacts<'a> {
    pub generation: u32,
    pub group: u32,
    pub binary: u32,
    pub parent: u32,
    /// None while the arguments are not known.
    pub argv: Option<&'a Argv>,
}

/// First rule (in policy order) matching the exec, else the group default.
#[inline(always)]
pub fn judge_exec(f: &ExecFacts, default: u32) -> Verdict {
    let mut best = Verdict {
        action: default,
        rule: 0,
        deferred: 0,
    };
    if f.binary != NO_BINARY {
        scan_exec(f, f.binary, &mut best);
    }
    scan_exec(f, ANY_BINARY, &mut best);
    best
}

/// Scans one binary's rule slots for the first (lowest-numbered) one that matches.
#[inline(always)]
fn scan_exec(f: &ExecFacts, binary: u32, best: &mut Verdict) {
    let key = ExecRulesKey {
        generation: f.generation,
        binary,
    };
    let Some(rules) = EXEC_RULES.get_ptr(&key) else {
        return;
    };
    // SAFETY: map value pointer valid for this program run.
    let rules: &ExecRules = unsafe { &*rules };
    let mut i = 0usize;
    while i < EXEC_SLOTS {
        if i as u32 >= rules.count {
            break;
        }
        let s = &rules.slots[i];
        let take = slot_matches(s, f, best.rule);
        if take != 0 {
            best.action = s.action;
            best.rule = s.rule;
            best.deferred = take >> 1;
        }
        i += 1;
    }
}

/// Whether slot `s` beats the best rule so far: 0 no, 1 yes, 3 yes but its arguments are
/// not known yet (deferred). A separate BPF function on purpose: the verifier then sees one
/// 0/1/3 result per slot instead of every path through the slot's conditions, which keeps
/// the scan of 2 × 16 slots far below its budget.
#[inline(never)]
fn slot_matches(s: &ExecSlot, f: &ExecFacts, best_rule: u32) -> u32 {
    if !(best_rule == 0 || s.rule < best_rule) {
        return 0;
    }
    if s.group != ANY_GROUP && s.group != f.group {
        return 0;
    }
    if s.parent != ANY_BINARY && s.parent != f.parent {
        return 0;
    }
    match f.argv {
        None if s.nargs > 0 => 3,
        None => 1,
        Some(a) => (a.argc > s.nargs && !mismatches(a, &s.args, s.action)) as u32,
    }
}

/// Whether the arguments fail any of the patterns. A pattern `ANY_ARG` always holds. An
/// argument not captured whole cannot be compared: it holds for a rule that refuses and fails
/// for one that allows, so a long command line never turns a refusal into an allow.
#[inline(always)]
fn mismatches(a: &Argv, patterns: &[u64; MAX_ARG_PATTERNS], action: u32) -> bool {
    let allows = action != Action::Deny as u32 && action != Action::Approve as u32;
    let mut i = 0;
    while i < MAX_ARG_PATTERNS {
        let p = patterns[i];
        if p != ANY_ARG {
            let fail = if known(a, i + 1) != 0 {
                p != a.hashes[i + 1]
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

/// A destination as the rules see it.
pub struct Destination {
    /// IPv6 or IPv4-mapped IPv6, network byte order.
    pub addr: [u8; 16],
    /// Host byte order.
    pub port: u16,
    pub protocol: u16,
}

/// First network rule (in policy order) matching the destination, else the group default.
#[inline(always)]
pub fn judge_connect(generation: u32, group: u32, d: &Destination, default: u32) -> Verdict {
    let mut best = Verdict {
        action: default,
        rule: 0,
        deferred: 0,
    };
    let key = Key::new(
        NET_GENERATION_BITS + 128,
        NetKey {
            generation: generation.to_be_bytes(),
            addr: d.addr,
        },
    );
    let Some(rules) = NET_RULES.get(&key) else {
        return best;
    };
    let rules: &NetRules = rules;
    let mut i = 0usize;
    while i < NET_SLOTS {
        if i as u32 >= rules.count {
            break;
        }
        let s = &rules.slots[i];
        if net_slot_matches(s, group, d, best.rule) != 0 {
            best.action = s.action;
            best.rule = s.rule;
        }
        i += 1;
    }
    best
}

/// Whether slot `s` matches and beats the best rule so far (a separate BPF function, for the
/// same reason as [`slot_matches`]).
#[inline(never)]
fn net_slot_matches(s: &NetSlot, group: u32, d: &Destination, best_rule: u32) -> u32 {
    ((best_rule == 0 || s.rule < best_rule)
        && (s.group == ANY_GROUP || s.group == group)
        && (s.protocol == ANY_PROTOCOL || s.protocol == d.protocol)
        && d.port >= s.port_lo
        && d.port <= s.port_hi) as u32
}
