//! Agent groups: name, cgroup path, defaults, monitor mode, accounts, permits.

use std::sync::Arc;

use agent_common::{policy::group_flags::PERMITS, MAX_CGROUP_LEVEL};

use super::{check_name, Scope};
use crate::{
    error::{PolicyError, Subject},
    model::{Action, AgentGroup, Location},
    parse::Item,
    raw::{items, line, RawAgent, Str},
};

pub(super) fn validate(
    file: &Arc<str>,
    item: &Item<RawAgent>,
    errors: &mut Vec<PolicyError>,
) -> Option<AgentGroup> {
    let raw = &item.raw;
    let name = raw.name.as_str();
    let subject = Some(Subject::Agent(name.to_owned()));
    let mut s = Scope {
        file,
        subject,
        errors,
        failed: false,
    };
    if let Err(e) = check_name("agent group name", name) {
        s.err(line(raw.name.span()), e);
    }
    if let Err(e) = check_cgroup(raw.cgroup.as_str()) {
        s.err(line(raw.cgroup.span()), e);
    }
    let defaults = raw.default.as_ref();
    let default_exec = action(&mut s, defaults.and_then(|d| d.exec.as_ref()));
    let default_network = action(&mut s, defaults.and_then(|d| d.network.as_ref()));
    let agent_written = action(&mut s, raw.agent_written.as_ref());
    let monitor = match raw.monitor.as_ref() {
        None => false,
        Some(m) => match m.as_str() {
            "true" => true,
            "false" => false,
            other => {
                s.err(
                    line(m.span()),
                    format!("monitor must be true or false, not '{other}'"),
                );
                false
            }
        },
    };
    let mut accounts: Vec<String> = Vec::new();
    for (account, l) in raw.accounts.as_ref().map(items).unwrap_or_default() {
        match check_account(account) {
            Err(e) => s.err(l, e),
            Ok(()) if accounts.iter().any(|a| a == account) => {
                s.err(l, format!("account '{account}' is listed twice"))
            }
            Ok(()) => accounts.push(account.to_owned()),
        }
    }
    let mut permit: Vec<String> = Vec::new();
    for (name, l) in raw.permit.as_ref().map(items).unwrap_or_default() {
        if !PERMITS.iter().any(|(known, _)| *known == name) {
            let known: Vec<&str> = PERMITS.iter().map(|(n, _)| *n).collect();
            s.err(
                l,
                format!("unknown permit '{name}' (known: {})", known.join(", ")),
            );
        } else if permit.iter().any(|p| p == name) {
            s.err(l, format!("permit '{name}' is listed twice"));
        } else {
            permit.push(name.to_owned());
        }
    }
    (!s.failed).then(|| AgentGroup {
        name: name.to_owned(),
        cgroup: raw.cgroup.as_str().to_owned(),
        default_exec,
        default_network,
        monitor,
        accounts,
        permit,
        agent_written,
        location: Location {
            file: file.clone(),
            line: item.line,
        },
    })
}

/// An account: a user name as `useradd` takes it, or a numeric uid; never root.
fn check_account(a: &str) -> Result<(), String> {
    if a == "root" || a == "0" {
        return Err(format!(
            "account '{a}' is root: every root process of the host would be judged as an agent; \
             run agents as an account of their own (launch --user)"
        ));
    }
    let valid = !a.is_empty()
        && a.len() <= 32
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !a.starts_with('-');
    if !valid {
        return Err(format!(
            "account '{}' is not a user name or a uid (letters, digits, '_', '-', '.'; at most 32)",
            a.escape_debug()
        ));
    }
    Ok(())
}

/// An account listed by two groups: its processes could not tell which group they belong to.
pub(super) fn shared_account<'a>(a: &'a AgentGroup, other: &AgentGroup) -> Option<&'a str> {
    a.accounts
        .iter()
        .find(|x| other.accounts.contains(x))
        .map(String::as_str)
}

/// A default action; omitted = allow (the group is then governed by its rules alone).
fn action(s: &mut Scope, v: Option<&Str>) -> Action {
    let Some(v) = v else { return Action::Allow };
    Action::parse(v.as_str()).unwrap_or_else(|| {
        s.err(line(v.span()), unknown_action(v.as_str()));
        Action::Allow
    })
}

pub(crate) fn unknown_action(s: &str) -> String {
    format!("unknown action '{s}' (expected allow, audit, deny or approve)")
}

/// A path inside the cgroup v2 hierarchy, written in its one canonical form so that equal
/// and nested groups can be recognised by comparing strings.
pub(crate) fn check_cgroup(p: &str) -> Result<(), String> {
    const EXAMPLE: &str = "like /countersign/coding-agents";
    if !p.starts_with('/') {
        return Err(format!(
            "cgroup '{p}' must be an absolute path in the cgroup v2 hierarchy, {EXAMPLE}"
        ));
    }
    if p == "/" {
        return Err(
            "cgroup '/' is the root of the hierarchy: every process would be an agent".into(),
        );
    }
    if p.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "cgroup '{}' contains a blank or a control character",
            p.escape_debug()
        ));
    }
    if p == "/sys/fs/cgroup" || p.starts_with("/sys/fs/cgroup/") {
        let inner = p["/sys/fs/cgroup".len()..]
            .trim_start_matches("/unified")
            .trim_end_matches('/');
        let inner = if inner.is_empty() {
            "/countersign/coding-agents"
        } else {
            inner
        };
        return Err(format!(
            "cgroup '{p}' is a filesystem path: write the path inside the hierarchy, e.g. '{inner}'"
        ));
    }
    if p.ends_with('/') {
        return Err(format!(
            "cgroup '{p}' must not end with '/': write '{}'",
            p.trim_end_matches('/')
        ));
    }
    let parts: Vec<&str> = p[1..].split('/').collect();
    if parts.iter().any(|c| c.is_empty()) {
        return Err(format!("cgroup '{p}' has an empty component ('//')"));
    }
    if parts.iter().any(|c| *c == "." || *c == "..") {
        return Err(format!(
            "cgroup '{p}' must not contain '.' or '..' components"
        ));
    }
    if parts.len() > MAX_CGROUP_LEVEL as usize {
        return Err(format!(
            "cgroup '{p}' is {} levels deep; at most {MAX_CGROUP_LEVEL}",
            parts.len()
        ));
    }
    Ok(())
}

/// Two groups must not share processes: equal or nested cgroups are refused.
pub(super) fn overlap(a: &AgentGroup, other: &AgentGroup) -> Option<String> {
    let inside = |inner: &str, outer: &str| {
        inner
            .strip_prefix(outer)
            .is_some_and(|rest| rest.starts_with('/'))
    };
    let tail = format!(
        "of agent group '{}' ({}): a process must belong to one group",
        other.name, other.location
    );
    if a.cgroup == other.cgroup {
        Some(format!("cgroup {} is also the cgroup {tail}", a.cgroup))
    } else if inside(&a.cgroup, &other.cgroup) {
        Some(format!(
            "cgroup {} is inside the cgroup {} {tail}",
            a.cgroup, other.cgroup
        ))
    } else if inside(&other.cgroup, &a.cgroup) {
        Some(format!(
            "cgroup {} contains the cgroup {} {tail}",
            a.cgroup, other.cgroup
        ))
    } else {
        None
    }
}
