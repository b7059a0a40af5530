//! Validation errors of the file and its agent groups, with their lines.

use super::{error, errors, policy};

fn agent(fields: &str) -> String {
    format!("version: 1\nagents:\n  - name: ai\n{fields}")
}

#[test]
fn version() {
    assert_eq!(
        error("agents:\n  - name: ai\n    cgroup: /a\n"),
        "p.yaml:1: missing 'version: 1' (the format version)"
    );
    assert_eq!(
        error("version: 3\nagents:\n  - name: ai\n    cgroup: /a\n"),
        "p.yaml:1: unsupported version '3': this agent reads version 1"
    );
}

#[test]
fn no_agent_groups() {
    assert_eq!(
        error("version: 1\n"),
        "p.yaml: the policy defines no agent groups: nothing would be enforced"
    );
}

#[test]
fn agent_names() {
    let e = error("version: 1\nagents:\n  - name: Coding\n    cgroup: /a\n");
    assert_eq!(e, "p.yaml:3: agent 'Coding': agent group name 'Coding' must match [a-z0-9][a-z0-9._-]* (lower case, digits, . _ -)");
    let e =
        error("version: 1\nagents:\n  - name: ai\n    cgroup: /a\n  - name: ai\n    cgroup: /b\n");
    assert_eq!(
        e,
        "p.yaml:5: agent 'ai': duplicate agent group name (first defined at p.yaml:3)"
    );
}

#[test]
fn cgroup_paths() {
    let cases = [
        ("agents/ai", "cgroup 'agents/ai' must be an absolute path in the cgroup v2 hierarchy, like /countersign/coding-agents"),
        ("/", "cgroup '/' is the root of the hierarchy: every process would be an agent"),
        ("/a/", "cgroup '/a/' must not end with '/': write '/a'"),
        ("/a//b", "cgroup '/a//b' has an empty component ('//')"),
        ("/a/../b", "cgroup '/a/../b' must not contain '.' or '..' components"),
        ("\"/a \"", "cgroup '/a ' contains a blank or a control character"),
        ("/sys/fs/cgroup/unified/x", "cgroup '/sys/fs/cgroup/unified/x' is a filesystem path: write the path inside the hierarchy, e.g. '/x'"),
    ];
    for (path, msg) in cases {
        let e = error(&agent(&format!("    cgroup: {path}\n")));
        assert_eq!(e, format!("p.yaml:4: agent 'ai': {msg}"));
    }
    let deep = "/x".repeat(32);
    assert!(
        error(&agent(&format!("    cgroup: {deep}\n"))).ends_with("is 32 levels deep; at most 31")
    );
    policy(&agent(&format!("    cgroup: {}\n", "/x".repeat(31))));
}

#[test]
fn cgroups_must_not_overlap() {
    let two = |a: &str, b: &str| {
        format!("version: 1\nagents:\n  - name: a\n    cgroup: {a}\n  - name: b\n    cgroup: {b}\n")
    };
    assert_eq!(
        error(&two("/x", "/x")),
        "p.yaml:6: agent 'b': cgroup /x is also the cgroup of agent group 'a' (p.yaml:3): a process must belong to one group"
    );
    assert_eq!(
        error(&two("/x", "/x/y")),
        "p.yaml:6: agent 'b': cgroup /x/y is inside the cgroup /x of agent group 'a' (p.yaml:3): a process must belong to one group"
    );
    assert!(
        error(&two("/x/y", "/x")).contains("cgroup /x contains the cgroup /x/y of agent group 'a'")
    );
    policy(&two("/x", "/xy"));
}

#[test]
fn defaults_and_monitor() {
    let e = errors(&agent(
        "    cgroup: /a\n    default: { exec: block, network: allow }\n    monitor: 1\n",
    ));
    assert_eq!(
        e,
        [
            "p.yaml:5: agent 'ai': unknown action 'block' (expected allow, audit, deny or approve)",
            "p.yaml:6: agent 'ai': monitor must be true or false, not '1'",
        ]
    );
    let p = policy(&agent(
        "    cgroup: /a\n    default: { network: deny }\n    monitor: true\n",
    ));
    assert_eq!(p.agents[0].default_exec, crate::Action::Allow);
    assert_eq!(p.agents[0].default_network, crate::Action::Deny);
    assert!(p.agents[0].monitor);
}

#[test]
fn accounts() {
    let p = policy(&agent(
        "    cgroup: /a\n    accounts: [agent-bot, \"64123\"]\n",
    ));
    assert_eq!(p.agents[0].accounts, ["agent-bot", "64123"]);
    assert!(policy(&agent("    cgroup: /a\n")).agents[0]
        .accounts
        .is_empty());
    let e = errors(&agent(
        "    cgroup: /a\n    accounts:\n      - root\n      - \"a b\"\n      - bot\n      - bot\n",
    ));
    assert_eq!(
        e,
        [
            "p.yaml:6: agent 'ai': account 'root' is root: every root process of the host would be judged as an agent; run agents as an account of their own (launch --user)",
            "p.yaml:7: agent 'ai': account 'a b' is not a user name or a uid (letters, digits, '_', '-', '.'; at most 32)",
            "p.yaml:9: agent 'ai': account 'bot' is listed twice",
        ]
    );
    let e = error(
        "version: 1\nagents:\n  - name: ai\n    cgroup: /a\n    accounts: bot\n  - name: ci\n    cgroup: /b\n    accounts: [ci, bot]\n",
    );
    assert_eq!(
        e,
        "p.yaml:8: agent 'ci': account 'bot' is also an account of agent group 'ai' (p.yaml:3): an account belongs to one group"
    );
}

#[test]
fn agent_written_floor() {
    use crate::model::Action;
    let p = policy(&agent("    cgroup: /a\n    agent_written: approve\n"));
    assert_eq!(p.agents[0].agent_written, Action::Approve);
    assert_eq!(
        policy(&agent("    cgroup: /a\n")).agents[0].agent_written,
        Action::Allow,
        "omitted: no floor"
    );
    let e = errors(&agent("    cgroup: /a\n    agent_written: ask\n"));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("p.yaml:5: agent 'ai': ") && e[0].contains("'ask'"),
        "{e:?}"
    );
}

#[test]
fn permits() {
    use agent_common::policy::group_flags::{MONITOR, PERMIT_DELEGATORS, PERMIT_PING};
    let p = policy(&agent(
        "    cgroup: /a\n    monitor: true\n    permit: [ping, delegators]\n",
    ));
    assert_eq!(p.agents[0].permit, ["ping", "delegators"]);
    assert_eq!(
        p.agents[0].flags(),
        MONITOR | PERMIT_PING | PERMIT_DELEGATORS
    );
    assert_eq!(policy(&agent("    cgroup: /a\n")).agents[0].flags(), 0);
    let e = errors(&agent(
        "    cgroup: /a\n    permit:\n      - ping\n      - bpf\n      - ping\n",
    ));
    assert_eq!(
        e,
        [
            "p.yaml:7: agent 'ai': unknown permit 'bpf' (known: ping, raw_sockets, packet_sockets, delegators, io_uring)",
            "p.yaml:8: agent 'ai': permit 'ping' is listed twice",
        ]
    );
}
