//! Rules: id, agents, the one matcher, action and approvers.

use std::{collections::HashSet, sync::Arc};

use agent_common::{
    grant::MAX_GRANT_SLOTS,
    policy::{EXEC_SLOTS, NET_SLOTS},
};
use marked_yaml::Spanned;

use super::{agent::unknown_action, check_name, exec, network, Scope};
use crate::{
    duration,
    error::{PolicyError, Subject},
    model::{Action, Approvers, GrantSpec, Location, Match, Rule},
    parse::Item,
    raw::{items, line, RawApprovers, RawRule},
};

pub(super) fn validate(
    file: &Arc<str>,
    item: &Item<RawRule>,
    known_agents: &HashSet<&str>,
    errors: &mut Vec<PolicyError>,
) -> Option<Rule> {
    let raw = &item.raw;
    let id = raw.id.as_str();
    let mut s = Scope {
        file,
        subject: Some(Subject::Rule(id.to_owned())),
        errors,
        failed: false,
    };
    if let Err(e) = check_name("rule id", id) {
        s.err(line(raw.id.span()), e);
    }
    let agents = agents(&mut s, raw, known_agents);
    let action = Action::parse(raw.action.as_str()).unwrap_or_else(|| {
        s.err(line(raw.action.span()), unknown_action(raw.action.as_str()));
        Action::Allow
    });
    let approvers = match &raw.approvers {
        Some(a) if action != Action::Approve => {
            s.err(
                line(a.span()),
                "approvers only apply to rules with action approve",
            );
            None
        }
        Some(a) => approvers(&mut s, a),
        None => None,
    };
    let groups = agents.len().max(1);
    let matcher = match (&raw.exec, &raw.network) {
        (Some(_), Some(n)) => {
            s.err(
                line(n.span()),
                "a rule has exec or network, not both: write two rules",
            );
            None
        }
        (None, None) => {
            s.err(item.line, "a rule needs exec or network");
            None
        }
        (Some(e), None) => {
            let m = exec::validate(&mut s, e);
            let slots = m.expansions() * groups;
            if slots > EXEC_SLOTS {
                let why = format!(
                    "this rule expands to {slots} kernel slots (argument alternatives × parents × \
                     agent groups); at most {EXEC_SLOTS}: split it or use \"*\""
                );
                s.err(line(e.span()), why);
            }
            Some(Match::Exec(m))
        }
        (None, Some(n)) => {
            let m = network::validate(&mut s, n);
            let slots = m.ports.len().max(1) * groups;
            if slots > NET_SLOTS {
                let why = format!(
                    "this rule expands to {slots} kernel slots (port ranges × agent groups); \
                     at most {NET_SLOTS}: split it or merge ports into ranges"
                );
                s.err(line(n.span()), why);
            }
            Some(Match::Network(m))
        }
    };
    if s.failed {
        return None;
    }
    Some(Rule {
        id: id.to_owned(),
        description: raw.description.as_ref().map(|d| d.as_str().to_owned()),
        agents,
        matcher: matcher?,
        action,
        approvers,
        location: Location {
            file: file.clone(),
            line: item.line,
        },
    })
}

/// The agent groups named by the rule: known, listed once; omitted = every group.
fn agents(s: &mut Scope, raw: &RawRule, known: &HashSet<&str>) -> Vec<String> {
    let Some(list) = &raw.agents else {
        return vec![];
    };
    let list = items(list);
    if list.is_empty() {
        let l = raw.agents.as_ref().map_or(0, |a| line(a.span()));
        s.err(l, "agents: [] names no group; omit agents for every group");
    }
    let mut out: Vec<String> = Vec::new();
    for (name, l) in list {
        if !known.contains(name) {
            let mut names: Vec<&str> = known.iter().copied().collect();
            names.sort_unstable();
            s.err(
                l,
                format!(
                    "unknown agent group '{name}' (defined: {})",
                    names.join(", ")
                ),
            );
        } else if !out.iter().any(|o| o == name) {
            out.push(name.to_owned());
        }
    }
    out
}

fn approvers(s: &mut Scope, a: &Spanned<RawApprovers>) -> Option<Approvers> {
    let mut groups = Vec::new();
    match &a.groups {
        None => s.err(
            line(a.span()),
            "approvers need groups: [...] (who may approve)",
        ),
        Some(g) => {
            let list = items(g);
            if list.is_empty() {
                s.err(line(g.span()), "approvers.groups is empty");
            }
            for (name, l) in list {
                if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    s.err(
                        l,
                        format!(
                            "approver group '{}' is empty or has blanks",
                            name.escape_debug()
                        ),
                    );
                }
                groups.push(name.to_owned());
            }
        }
    }
    let min = match &a.min {
        None => 1,
        Some(m) => match m.as_str().parse::<u32>() {
            Ok(n) if n >= 1 => n,
            _ => {
                s.err(
                    line(m.span()),
                    format!("approvers.min must be a number ≥ 1, not '{}'", m.as_str()),
                );
                1
            }
        },
    };
    let mut grant = GrantSpec::default();
    if let Some(g) = &a.grant {
        if let Some(u) = &g.uses {
            match u.as_str().parse::<u32>() {
                Ok(n) if n <= MAX_GRANT_SLOTS => grant.uses = n,
                _ => s.err(
                    line(u.span()),
                    format!(
                        "grant.uses must be 0 (unlimited until the ttl) to {MAX_GRANT_SLOTS}, not '{}'",
                        u.as_str()
                    ),
                ),
            }
        }
        if let Some(t) = &g.ttl {
            match duration::parse(t.as_str()) {
                Ok(d) => grant.ttl = d,
                Err(e) => s.err(line(t.span()), format!("grant.ttl: {e}")),
            }
        }
    }
    let expires = match &a.expires {
        None => Approvers::DEFAULT_EXPIRES,
        // `duration::parse` refuses zero: a request that expires at once can never be decided.
        Some(t) => duration::parse(t.as_str()).unwrap_or_else(|e| {
            s.err(line(t.span()), format!("approvers.expires: {e}"));
            Approvers::DEFAULT_EXPIRES
        }),
    };
    let allow_launcher = match a.allow_launcher.as_ref().map(|b| (b, b.as_str())) {
        None => false,
        Some((_, "true")) => true,
        Some((_, "false")) => false,
        Some((b, other)) => {
            s.err(
                line(b.span()),
                format!("approvers.allow_launcher must be true or false, not '{other}'"),
            );
            false
        }
    };
    Some(Approvers {
        groups,
        min,
        grant,
        expires,
        allow_launcher,
    })
}
