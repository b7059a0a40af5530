//! Network rules → `NET_RULES` (LPM trie) entries.

use std::collections::BTreeMap;

use agent_common::policy::{NetKey, NetRules, NetSlot, NET_GENERATION_BITS, NET_SLOTS};

use super::{describe, group_ids};
use crate::{
    cidr::Cidr,
    error::{PolicyError, Subject},
    model::{Match, NetMatch, Policy, PortRange},
};

pub(super) fn compile(
    policy: &Policy,
    generation: u32,
    errors: &mut Vec<PolicyError>,
) -> Vec<(u32, NetKey, NetRules)> {
    let rules: Vec<(usize, &NetMatch)> = policy
        .rules
        .iter()
        .enumerate()
        .filter_map(|(i, r)| match &r.matcher {
            Match::Network(m) => Some((i, m)),
            Match::Exec(_) => None,
        })
        .collect();
    // Keyed by (length, address): `10.0.0.0/8` and `::ffff:10.0.0.0/104` are one prefix.
    let mut prefixes: BTreeMap<(u32, [u8; 16]), Cidr> = BTreeMap::new();
    for (_, m) in &rules {
        let cidrs = if m.cidrs.is_empty() {
            &[Cidr::ANY][..]
        } else {
            &m.cidrs[..]
        };
        for c in cidrs {
            prefixes.entry((c.prefix_len(), c.octets())).or_insert(*c);
        }
    }
    let mut out = Vec::new();
    for prefix in prefixes.values() {
        let mut slots = Vec::new();
        let mut counts = Vec::new();
        for &(index, m) in &rules {
            if !m.cidrs.is_empty() && !m.cidrs.iter().any(|c| c.covers(prefix)) {
                continue;
            }
            let before = slots.len();
            let rule = &policy.rules[index];
            let ports = if m.ports.is_empty() {
                &[PortRange::ALL][..]
            } else {
                &m.ports[..]
            };
            for group in group_ids(policy, rule) {
                for p in ports {
                    slots.push(NetSlot {
                        rule: index as u32 + 1,
                        action: rule.action as u32,
                        group,
                        port_lo: p.lo,
                        port_hi: p.hi,
                        protocol: m.protocol.number(),
                        _pad: [0; 3],
                    });
                }
            }
            counts.push((index, slots.len() - before));
        }
        if slots.len() > NET_SLOTS {
            errors.push(overflow(policy, prefix, slots.len(), &counts));
            continue;
        }
        let mut value = NetRules {
            count: slots.len() as u32,
            ..NetRules::default()
        };
        value.slots[..slots.len()].copy_from_slice(&slots);
        let key = NetKey {
            generation: generation.to_be_bytes(),
            addr: prefix.octets(),
        };
        out.push((NET_GENERATION_BITS + prefix.prefix_len(), key, value));
    }
    out
}

/// Error at the rule that made a prefix's list overflow.
fn overflow(
    policy: &Policy,
    prefix: &Cidr,
    total: usize,
    counts: &[(usize, usize)],
) -> PolicyError {
    let rule = super::culprit(policy, counts, NET_SLOTS);
    let message = format!(
        "addresses in {prefix} are covered by {total} kernel slots, at most {NET_SLOTS}: rules {}; \
         merge port ranges or rules",
        describe(policy, counts)
    );
    PolicyError::at(
        &rule.location.file,
        rule.location.line,
        Some(Subject::Rule(rule.id.clone())),
        message,
    )
}
