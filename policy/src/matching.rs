//! The userspace twin of the kernel's judgement (`agent-ebpf/src/rules.rs`), for
//! `policy explain` and tests: the first rule in policy order that applies to the group and
//! matches wins, else the group's default. Arguments are compared by their kernel hash, with
//! the kernel's rule for arguments too long to compare, so a verdict here is the verdict
//! there (`tests/kernel_twin.rs` checks it against the compiled maps).

use std::{fmt, net::IpAddr, path::PathBuf};

use agent_common::{
    hash,
    policy::{AGENT_WRITTEN_RULE, AGENT_WRITTEN_RULE_ID},
    verdict::strictness,
};

use crate::{
    attempt::{ConnectAttempt, ExecAttempt},
    cidr::{to_mapped, Cidr},
    model::{Action, AgentGroup, ArgPattern, Match, Policy, PortRange, Protocol, Rule},
    resolve::{FileId, Resolver},
};

/// The rule that decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleRef {
    /// Position in [`Policy::rules`].
    pub index: usize,
    pub id: String,
}

impl RuleRef {
    /// The number the kernel reports (`ExecSlot::rule`, `NetSlot::rule`): index + 1.
    pub fn number(&self) -> u32 {
        self.index as u32 + 1
    }
}

/// What the policy says about an operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub action: Action,
    /// None: the agent group's default decided.
    pub rule: Option<RuleRef>,
    /// One line: which rule or default, and why.
    pub reason: String,
}

/// Why one rule does not match an operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mismatch {
    /// The rule lists other agent groups.
    OtherGroups(Vec<String>),
    /// An exec rule for a connect, or a network rule for an exec.
    OtherKind,
    Binary(Vec<PathBuf>),
    /// argc must be greater than the number of patterns.
    TooFewArgs {
        patterns: usize,
        argc: usize,
    },
    /// An argument too long for the kernel to compare, under a rule that does not refuse.
    LongArg {
        position: usize,
    },
    Arg {
        position: usize,
        value: String,
        pattern: ArgPattern,
    },
    Parent {
        wanted: Vec<PathBuf>,
        known: bool,
    },
    Address(Vec<Cidr>),
    Port(Vec<PortRange>),
    Protocol(Protocol),
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |v: &[PathBuf]| {
            v.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Self::OtherGroups(g) => write!(f, "applies only to agent groups {}", g.join(", ")),
            Self::OtherKind => f.write_str("not a rule for this kind of operation"),
            Self::Binary(b) => write!(
                f,
                "the binary is none of {} (compared by device and inode)",
                list(b)
            ),
            Self::TooFewArgs { patterns, argc } => write!(
                f,
                "needs at least {patterns} arguments after argv[0], the command has {}",
                argc.saturating_sub(1)
            ),
            Self::Arg {
                position,
                value,
                pattern,
            } => {
                write!(f, "argument {position} {value:?} does not match {pattern}")
            }
            Self::LongArg { position } => write!(
                f,
                "argument {position} is longer than {} bytes: it cannot be compared, and an \
                 allow or audit rule does not match what it cannot compare",
                agent_common::MAX_WHOLE_ARG
            ),
            Self::Parent {
                wanted,
                known: true,
            } => write!(f, "the parent runs none of {}", list(wanted)),
            Self::Parent {
                wanted,
                known: false,
            } => {
                write!(
                    f,
                    "the parent's binary is unknown; the rule needs one of {}",
                    list(wanted)
                )
            }
            Self::Address(c) => write!(f, "the address is in none of {}", join(c)),
            Self::Port(p) => write!(f, "the port is in none of {}", join(p)),
            Self::Protocol(p) => write!(f, "the rule is for {} only", p.as_str()),
        }
    }
}

fn join<T: fmt::Display>(v: &[T]) -> String {
    v.iter().map(T::to_string).collect::<Vec<_>>().join(", ")
}

/// Why `rule` does not match the exec, or None when it does.
pub fn exec_mismatch(
    rule: &Rule,
    group: &AgentGroup,
    e: &ExecAttempt,
    resolver: &dyn Resolver,
) -> Option<Mismatch> {
    if !rule.applies_to(&group.name) {
        return Some(Mismatch::OtherGroups(rule.agents.clone()));
    }
    let Match::Exec(m) = &rule.matcher else {
        return Some(Mismatch::OtherKind);
    };
    let is = |id: Option<FileId>, p: &crate::model::RulePath| {
        id.is_some() && resolver.identity(&p.path) == id
    };
    if !m.binaries.is_empty() && !m.binaries.iter().any(|p| is(Some(e.binary), p)) {
        return Some(Mismatch::Binary(
            m.binaries.iter().map(|p| p.path.clone()).collect(),
        ));
    }
    if e.argv.len() <= m.args.len() {
        return Some(Mismatch::TooFewArgs {
            patterns: m.args.len(),
            argc: e.argv.len(),
        });
    }
    for (i, p) in m.args.iter().enumerate() {
        let value = &e.argv[i + 1];
        let ok = match (p, hash::arg(value)) {
            (ArgPattern::Any, _) => true,
            (ArgPattern::OneOf(l), Some(h)) => l.iter().any(|l| hash::arg(l.as_bytes()) == Some(h)),
            // The kernel cannot compare an argument longer than its slot: it counts as a
            // match for a refusing rule and a miss otherwise, so that a long argument never
            // turns a refusal into an allow.
            (ArgPattern::OneOf(_), None) if rule.action.refuses() => true,
            (ArgPattern::OneOf(_), None) => {
                return Some(Mismatch::LongArg { position: i + 1 });
            }
        };
        if !ok {
            let value = String::from_utf8_lossy(value).into_owned();
            return Some(Mismatch::Arg {
                position: i + 1,
                value,
                pattern: p.clone(),
            });
        }
    }
    if !m.parents.is_empty() && !m.parents.iter().any(|p| is(e.parent, p)) {
        let wanted = m.parents.iter().map(|p| p.path.clone()).collect();
        return Some(Mismatch::Parent {
            wanted,
            known: e.parent.is_some(),
        });
    }
    None
}

/// Why `rule` does not match the connect, or None when it does.
pub fn connect_mismatch(rule: &Rule, group: &AgentGroup, c: &ConnectAttempt) -> Option<Mismatch> {
    if !rule.applies_to(&group.name) {
        return Some(Mismatch::OtherGroups(rule.agents.clone()));
    }
    let Match::Network(m) = &rule.matcher else {
        return Some(Mismatch::OtherKind);
    };
    let addr = IpAddr::V6(to_mapped(c.addr));
    if !m.cidrs.is_empty() && !m.cidrs.iter().any(|n| n.contains(addr)) {
        return Some(Mismatch::Address(m.cidrs.clone()));
    }
    if !m.ports.is_empty() && !m.ports.iter().any(|r| r.contains(c.port)) {
        return Some(Mismatch::Port(m.ports.clone()));
    }
    if !m.protocol.admits(c.transport) {
        return Some(Mismatch::Protocol(m.protocol));
    }
    None
}

impl Policy {
    /// What the policy decides for an exec by a process of `group`.
    pub fn decide_exec(
        &self,
        group: &AgentGroup,
        e: &ExecAttempt,
        resolver: &dyn Resolver,
    ) -> Decision {
        let hit = self
            .rules
            .iter()
            .position(|r| exec_mismatch(r, group, e, resolver).is_none());
        let d = self.decision(group, hit, group.default_exec, "exec");
        let floor = group.agent_written;
        if e.agent_written && strictness(floor as u32) > strictness(d.action as u32) {
            return Decision {
                action: floor,
                rule: Some(RuleRef {
                    index: (AGENT_WRITTEN_RULE - 1) as usize,
                    id: AGENT_WRITTEN_RULE_ID.to_owned(),
                }),
                reason: format!(
                    "a session wrote this file: agent group '{}' says at least {} \
                     (agent_written), stricter than {}",
                    group.name,
                    floor.as_str(),
                    d.reason
                ),
            };
        }
        d
    }

    /// What the policy decides for a connect by a process of `group`.
    pub fn decide_connect(&self, group: &AgentGroup, c: &ConnectAttempt) -> Decision {
        let hit = self
            .rules
            .iter()
            .position(|r| connect_mismatch(r, group, c).is_none());
        self.decision(group, hit, group.default_network, "network")
    }

    fn decision(
        &self,
        group: &AgentGroup,
        hit: Option<usize>,
        default: Action,
        kind: &str,
    ) -> Decision {
        match hit.map(|i| (i, &self.rules[i])) {
            Some((index, r)) => Decision {
                action: r.action,
                rule: Some(RuleRef {
                    index,
                    id: r.id.clone(),
                }),
                reason: format!(
                    "rule '{}' ({}) matches: {}",
                    r.id,
                    r.location,
                    r.action.as_str()
                ),
            },
            None => Decision {
                action: default,
                rule: None,
                reason: format!(
                    "no rule matches: default {kind} action of agent group '{}': {}",
                    group.name,
                    default.as_str()
                ),
            },
        }
    }
}
