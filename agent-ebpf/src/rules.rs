//! Matching an operation against the compiled rules of the active policy generation.

use agent_common::{
    event::flags,
    matching,
    policy::{
        ExecRules, ExecRulesKey, ExecSlot, Group, NetKey, NetRules, NetSlot, AGENT_WRITTEN_RULE,
        ANY_BINARY, EXEC_SLOTS, NET_GENERATION_BITS, NET_SLOTS,
    },
    verdict::strictness,
    Action,
};
use aya_ebpf::maps::lpm_trie::Key;

use crate::{
    argv::Argv,
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

pub use agent_common::matching::NO_BINARY;

/// Facts about an exec that rules look at.
pub struct ExecFacts<'a> {
    pub generation: u32,
    pub group: u32,
    pub binary: u32,
    pub parent: u32,
    /// None while the arguments are not known.
    pub argv: Option<&'a Argv>,
    /// How the binary was known (`flags::AGENT_WRITTEN`, `flags::COPY`), for the event.
    pub identity: u32,
    /// Not a rule input: the file's write stamp, for the grant binding and the event.
    pub stamp: u64,
}

/// First rule (in policy order) matching the exec, else the group default; for a file a
/// watched process wrote, at least the group's `agent_written` action.
#[inline(always)]
pub fn judge_exec(f: &ExecFacts, group: &Group) -> Verdict {
    let mut best = Verdict {
        action: group.default_exec,
        rule: 0,
        deferred: 0,
    };
    if f.binary != NO_BINARY {
        scan_exec(f, f.binary, &mut best);
    }
    scan_exec(f, ANY_BINARY, &mut best);
    if f.identity & flags::AGENT_WRITTEN != 0
        && strictness(group.agent_written) > strictness(best.action)
    {
        // A rule that waits for the arguments still decides later, floor included.
        best.action = group.agent_written;
        best.rule = AGENT_WRITTEN_RULE;
    }
    best
}

/// Whether a rule of generation `generation` denies `binary` or sends it to approval, in any
/// group and under any arguments (the loader guard: a binary that is guarded at all may not be
/// mapped executable other than by its own exec).
#[inline(always)]
pub fn guarded_binary(generation: u32, binary: u32) -> bool {
    let key = ExecRulesKey { generation, binary };
    let Some(rules) = EXEC_RULES.get_ptr(&key) else {
        return false;
    };
    // SAFETY: map value pointer valid for this program run.
    let rules: &ExecRules = unsafe { &*rules };
    let mut i = 0usize;
    while i < EXEC_SLOTS {
        if i as u32 >= rules.count {
            break;
        }
        let a = rules.slots[i].action;
        if a == Action::Deny as u32 || a == Action::Approve as u32 {
            return true;
        }
        i += 1;
    }
    false
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

/// Whether slot `s` beats the best rule so far (`agent_common::matching::exec_slot`: 0 no,
/// 1 yes, 3 yes but its arguments are not known yet). A separate BPF function on purpose: the
/// verifier then sees one 0/1/3 result per slot instead of every path through the slot's
/// conditions, which keeps the scan of 2 × 16 slots far below its budget.
#[inline(never)]
fn slot_matches(s: &ExecSlot, f: &ExecFacts, best_rule: u32) -> u32 {
    matching::exec_slot(s, f.group, f.parent, f.argv, best_rule)
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

/// Whether slot `s` matches and beats the best rule so far (`agent_common::matching::net_slot`;
/// a separate BPF function, for the same reason as [`slot_matches`]).
#[inline(never)]
fn net_slot_matches(s: &NetSlot, group: u32, d: &Destination, best_rule: u32) -> u32 {
    matching::net_slot(s, group, d.port, d.protocol, best_rule)
}
