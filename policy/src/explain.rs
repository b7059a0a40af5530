//! Human explanations for `countersign-agent policy explain`: which rule decides and why,
//! and why each earlier rule did not match.

use std::fmt::{self, Write};

use crate::{
    attempt::{ConnectAttempt, ExecAttempt},
    matching::{connect_mismatch, exec_mismatch, Decision, Mismatch},
    model::{Action, AgentGroup, Match, Policy, Rule},
    resolve::Resolver,
};

/// A decision and the reasoning behind it, several lines of text.
#[derive(Clone, Debug)]
pub struct Explanation {
    pub decision: Decision,
    pub text: String,
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Explains the decision for an exec by a process of `group`.
pub fn explain_exec(
    policy: &Policy,
    group: &AgentGroup,
    e: &ExecAttempt,
    resolver: &dyn Resolver,
) -> Explanation {
    let decision = policy.decide_exec(group, e, resolver);
    let argv: Vec<String> = e
        .argv
        .iter()
        .map(|a| format!("{:?}", String::from_utf8_lossy(a)))
        .collect();
    let path = e
        .binary_path
        .as_ref()
        .map_or("a file".to_owned(), |p| p.display().to_string());
    let head = format!(
        "exec of {path} ({}) argv [{}] in agent group '{}' (cgroup {})",
        e.binary,
        argv.join(", "),
        group.name,
        group.cgroup
    );
    let why = |r: &Rule| {
        let m = exec_mismatch(r, group, e, resolver)?;
        let mut s = m.to_string();
        if let (Mismatch::Binary(_), Match::Exec(x)) = (&m, &r.matcher) {
            for p in x
                .binaries
                .iter()
                .filter(|p| resolver.identity(&p.path).is_none())
            {
                let _ = write!(s, "; {} does not exist on this host", p.path.display());
            }
        }
        Some((m, s))
    };
    Explanation {
        text: render(policy, group, &decision, &head, why),
        decision,
    }
}

/// Explains the decision for a connect by a process of `group`.
pub fn explain_connect(policy: &Policy, group: &AgentGroup, c: &ConnectAttempt) -> Explanation {
    let decision = policy.decide_connect(group, c);
    let transport = c.transport.as_str();
    let head = format!(
        "connect to {} port {} ({transport}) in agent group '{}' (cgroup {})",
        c.addr, c.port, group.name, group.cgroup
    );
    let why = |r: &Rule| {
        connect_mismatch(r, group, c).map(|m| {
            let s = m.to_string();
            (m, s)
        })
    };
    Explanation {
        text: render(policy, group, &decision, &head, why),
        decision,
    }
}

fn render(
    policy: &Policy,
    group: &AgentGroup,
    decision: &Decision,
    head: &str,
    why: impl Fn(&Rule) -> Option<(Mismatch, String)>,
) -> String {
    let mut out = format!("{head}\n");
    let last = decision
        .rule
        .as_ref()
        .map_or(policy.rules.len(), |r| r.index + 1);
    let mut other_kind = 0;
    for r in &policy.rules[..last] {
        match why(r) {
            Some((Mismatch::OtherKind, _)) => other_kind += 1,
            Some((_, text)) => {
                let _ = writeln!(out, "  rule '{}' ({}): no match: {text}", r.id, r.location);
            }
            None => {
                let _ = writeln!(out, "  rule '{}' ({}): matches", r.id, r.location);
            }
        }
    }
    if other_kind > 0 {
        let _ = writeln!(out, "  ({other_kind} rules of the other kind skipped)");
    }
    let later = policy.rules.len() - last;
    if later > 0 {
        let _ = writeln!(
            out,
            "  ({later} later rules not considered: the first matching rule wins)"
        );
    }
    let _ = writeln!(
        out,
        "decision: {} ({})",
        decision.action.as_str().to_uppercase(),
        decision.reason
    );
    let rule = decision
        .rule
        .as_ref()
        .and_then(|r| policy.rules.get(r.index));
    if let Some(d) = rule.and_then(|r| r.description.as_deref()) {
        let _ = writeln!(out, "  rule description: {d}");
    }
    if decision.action == Action::Approve {
        match rule.and_then(|r| r.approvers.as_ref()) {
            Some(a) => {
                let _ = writeln!(
                    out,
                    "  refused until approved by {} of groups {}; a grant allows {} within {}",
                    a.min,
                    a.groups.join(", "),
                    match a.grant.uses {
                        0 => "any number of uses".to_owned(),
                        n => format!("{n} use(s)"),
                    },
                    crate::duration::format(a.grant.ttl)
                );
            }
            None => {
                let _ = writeln!(out, "  refused until an approver grants it");
            }
        }
    }
    if group.monitor && decision.action.refuses() {
        let _ = writeln!(
            out,
            "  agent group is in monitor mode: allowed and reported as would_refuse"
        );
    }
    out
}
