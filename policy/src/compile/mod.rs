//! Policy → the entries of the kernel maps (`agent_common::policy`) for one generation.
//!
//! Layout decisions the kernel relies on (see `agent-ebpf/src/rules.rs`):
//! - Exec rules are filed under each binary they name (`ExecRulesKey::binary`), or under
//!   [`ANY_BINARY`] when they name none; the kernel scans both lists and keeps the lowest rule
//!   number, so policy order holds across the two.
//! - One rule becomes several slots: one per combination of argument alternatives, per parent
//!   and per agent group it lists (a rule listing no group gets one slot with [`ANY_GROUP`]).
//!   Network rules get one slot per port range and per agent group.
//! - Network rules live in an LPM trie: under every distinct prefix of the policy (and `::/0`
//!   when a rule has no CIDR) the value lists every rule whose CIDR covers that prefix, so the
//!   longest-prefix match of a destination yields every rule that can apply to it.

mod exec;
mod net;

use std::path::{Path, PathBuf};

use agent_common::identity::ContentKey;
use agent_common::policy::{
    BinaryKey, ExecRules, ExecRulesKey, Group, NetKey, NetRules, ANY_GROUP,
};

use crate::{
    error::{PolicyError, PolicyErrors},
    model::{Policy, Rule},
    resolve::Resolver,
};

/// An agent group as loaded into `WATCHED`.
#[derive(Clone, Debug)]
pub struct CompiledGroup {
    /// Position in [`Policy::agents`].
    pub index: usize,
    pub name: String,
    /// Path inside the cgroup v2 hierarchy.
    pub cgroup: String,
    /// `id` = index + 1; `level` is 0: the daemon sets it from the cgroup it finds.
    pub group: Group,
    /// [`crate::model::AgentGroup::accounts`], as written (the daemon resolves them).
    pub accounts: Vec<String>,
}

/// The map entries of one policy generation, and what the daemon needs to turn the numbers
/// the kernel reports back into names.
#[derive(Clone, Debug)]
pub struct Compiled {
    pub generation: u32,
    pub groups: Vec<CompiledGroup>,
    /// `BINARIES`: each file identity named by a rule (binary or parent) once; ids from 1.
    pub binaries: Vec<(BinaryKey, u32)>,
    /// `CONTENTS`: the normalised head of each of those files that is an ELF executable, once
    /// (`agent_common::identity`): how the kernel recognises a copy.
    pub contents: Vec<(ContentKey, u32)>,
    /// `EXEC_RULES`, slots in policy order.
    pub exec_rules: Vec<(ExecRulesKey, ExecRules)>,
    /// `NET_RULES`: (LPM prefix length in bits, generation bits included; key; value).
    pub net_rules: Vec<(u32, NetKey, NetRules)>,
    /// Rule ids by rule number - 1.
    pub rule_ids: Vec<String>,
    /// The first path that named each binary, by binary id - 1.
    pub binary_paths: Vec<PathBuf>,
    /// Not fatal: rule paths that do not exist on this host.
    pub warnings: Vec<PolicyError>,
}

impl Compiled {
    /// Id of the rule the kernel reports as `rule` (index + 1); None for 0 (group default).
    pub fn rule_id(&self, rule: u32) -> Option<&str> {
        let i = (rule as usize).checked_sub(1)?;
        self.rule_ids.get(i).map(String::as_str)
    }

    /// Name of the agent group with kernel id `id` (index + 1).
    pub fn group_name(&self, id: u32) -> Option<&str> {
        self.groups
            .iter()
            .find(|g| g.group.id == id)
            .map(|g| g.name.as_str())
    }

    /// A path that names binary `id`.
    pub fn binary_path(&self, id: u32) -> Option<&Path> {
        let i = (id as usize).checked_sub(1)?;
        self.binary_paths.get(i).map(PathBuf::as_path)
    }
}

/// Compiles `policy` for `generation` (0 or 1), resolving rule paths with `resolver`.
/// Fails when a binary or a prefix would need more slots than a map value holds.
pub fn compile(
    policy: &Policy,
    generation: u32,
    resolver: &dyn Resolver,
) -> Result<Compiled, PolicyErrors> {
    let groups = policy
        .agents
        .iter()
        .enumerate()
        .map(|(index, a)| CompiledGroup {
            index,
            name: a.name.clone(),
            cgroup: a.cgroup.clone(),
            group: Group {
                id: index as u32 + 1,
                flags: a.flags(),
                default_exec: a.default_exec as u32,
                default_net: a.default_network as u32,
                level: 0,
                agent_written: a.agent_written as u32,
            },
            accounts: a.accounts.clone(),
        })
        .collect();
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let exec = exec::compile(policy, generation, resolver, &mut warnings, &mut errors);
    let net_rules = net::compile(policy, generation, &mut errors);
    if !errors.is_empty() {
        return Err(PolicyErrors(errors));
    }
    Ok(Compiled {
        generation,
        groups,
        binaries: exec.binaries,
        contents: exec.contents,
        exec_rules: exec.rules,
        net_rules,
        rule_ids: policy.rules.iter().map(|r| r.id.clone()).collect(),
        binary_paths: exec.paths,
        warnings,
    })
}

/// Kernel group ids a rule is limited to: [`ANY_GROUP`] alone when it lists none.
fn group_ids(policy: &Policy, rule: &Rule) -> Vec<u32> {
    if rule.agents.is_empty() {
        return vec![ANY_GROUP];
    }
    rule.agents
        .iter()
        .filter_map(|name| policy.agents.iter().position(|a| &a.name == name))
        .map(|i| i as u32 + 1)
        .collect()
}

/// `'a' (3 slots), 'b' (14 slots)` for overflow errors.
/// The rule whose slots made a list overflow `limit`: `counts` holds (rule index, slots) in
/// policy order.
fn culprit<'p>(policy: &'p Policy, counts: &[(usize, usize)], limit: usize) -> &'p Rule {
    let mut running = 0;
    let found = counts.iter().find(|(_, n)| {
        running += n;
        running > limit
    });
    &policy.rules[found.or(counts.last()).map_or(0, |c| c.0)]
}

fn describe(policy: &Policy, counts: &[(usize, usize)]) -> String {
    counts
        .iter()
        .map(|(i, n)| format!("'{}' ({n})", policy.rules[*i].id))
        .collect::<Vec<_>>()
        .join(", ")
}
