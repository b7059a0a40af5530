//! Decisions: first match in policy order, agents restriction, exec and connect conditions.

use std::net::IpAddr;

use super::{id, policy, MapResolver};
use crate::{Action, ConnectAttempt, Decision, ExecAttempt, FileId, Transport};

const POLICY: &str = r#"
version: 1
agents:
  - name: ai
    cgroup: /agents/ai
    default: { exec: audit, network: deny }
  - name: bots
    cgroup: /agents/bots
rules:
  - id: kubectl-mutations
    exec:
      binary: [/usr/bin/kubectl, /usr/local/bin/kubectl]
      args: ["delete|apply", "*"]
    action: approve
  - id: kubectl-any
    exec: { binary: /usr/bin/kubectl }
    action: allow
  - id: git-push-force
    exec: { args: ["push", "*", "*", "--force|-f"] }
    action: deny
  - id: python-child
    agents: [bots]
    exec: { binary: /usr/bin/curl, parent: /usr/bin/python3 }
    action: deny
  - id: db
    network: { cidr: [10.20.0.0/16, "fd00::/8"], ports: [5432, "8000-8100"], protocol: tcp }
    action: approve
  - id: dns-udp
    agents: [ai]
    network: { ports: [53], protocol: udp }
    action: audit
  - id: v6-mapped
    network: { cidr: ["::ffff:192.168.0.0/112"] }
    action: deny
"#;

fn host() -> MapResolver {
    // /usr/local/bin/kubectl is a symlink to /usr/bin/kubectl: same identity.
    MapResolver::with(&[
        ("/usr/bin/kubectl", 10),
        ("/usr/local/bin/kubectl", 10),
        ("/usr/bin/curl", 11),
        ("/usr/bin/python3", 12),
        ("/usr/bin/git", 13),
        ("/usr/bin/bash", 14),
    ])
}

fn exec(binary: FileId, argv: &[&str], parent: Option<FileId>) -> ExecAttempt {
    let argv = argv.iter().map(|a| a.as_bytes().to_vec()).collect();
    ExecAttempt {
        binary,
        binary_path: None,
        argv,
        parent,
        agent_written: false,
    }
}

fn decide(group: &str, e: &ExecAttempt) -> Decision {
    let p = policy(POLICY);
    let g = p.group(group).expect("group").clone();
    p.decide_exec(&g, e, &host())
}

fn rule_of(d: &Decision) -> Option<&str> {
    d.rule.as_ref().map(|r| r.id.as_str())
}

#[test]
fn first_matching_rule_wins() {
    let d = decide("ai", &exec(id(10), &["kubectl", "delete", "pod"], None));
    assert_eq!(
        (d.action, rule_of(&d)),
        (Action::Approve, Some("kubectl-mutations"))
    );
    assert_eq!(d.rule.as_ref().map(|r| r.number()), Some(1));
    let d = decide("ai", &exec(id(10), &["kubectl", "get", "pods"], None));
    assert_eq!(
        (d.action, rule_of(&d)),
        (Action::Allow, Some("kubectl-any"))
    );
}

#[test]
fn star_requires_the_argument() {
    // `delete` alone: argc 2 is not greater than 2 patterns.
    let d = decide("ai", &exec(id(10), &["kubectl", "delete"], None));
    assert_eq!(rule_of(&d), Some("kubectl-any"));
    // Extra arguments are allowed.
    let d = decide(
        "ai",
        &exec(id(10), &["kubectl", "apply", "-f", "x.yaml"], None),
    );
    assert_eq!(rule_of(&d), Some("kubectl-mutations"));
}

#[test]
fn argv0_takes_no_part() {
    let d = decide("ai", &exec(id(10), &["innocent", "delete", "pod"], None));
    assert_eq!(rule_of(&d), Some("kubectl-mutations"));
}

#[test]
fn binary_is_compared_by_identity() {
    let d = decide("ai", &exec(id(99), &["kubectl", "delete", "pod"], None));
    assert_eq!(
        (d.action, rule_of(&d)),
        (Action::Audit, None),
        "a copy of kubectl is another binary"
    );
    assert!(
        d.reason.contains("default exec action of agent group 'ai'"),
        "{}",
        d.reason
    );
}

#[test]
fn rules_without_binary_match_any_binary() {
    let d = decide(
        "ai",
        &exec(id(13), &["git", "push", "origin", "main", "-f"], None),
    );
    assert_eq!(
        (d.action, rule_of(&d)),
        (Action::Deny, Some("git-push-force"))
    );
    let d = decide(
        "ai",
        &exec(
            id(13),
            &["git", "push", "origin", "main", "--force-with-lease"],
            None,
        ),
    );
    assert_eq!(rule_of(&d), None);
}

#[test]
fn parent_and_agents_restriction() {
    let curl_from_python = exec(id(11), &["curl", "x"], Some(id(12)));
    assert_eq!(
        rule_of(&decide("bots", &curl_from_python)),
        Some("python-child")
    );
    assert_eq!(
        rule_of(&decide("ai", &curl_from_python)),
        None,
        "rule limited to bots"
    );
    assert_eq!(
        rule_of(&decide("bots", &exec(id(11), &["curl"], Some(id(14))))),
        None
    );
    assert_eq!(
        rule_of(&decide("bots", &exec(id(11), &["curl"], None))),
        None
    );
    let d = decide("bots", &exec(id(99), &["x"], None));
    assert_eq!(d.action, Action::Allow, "bots' default is allow");
}

fn connect(group: &str, addr: &str, port: u16, transport: Transport) -> Decision {
    let p = policy(POLICY);
    let g = p.group(group).expect("group").clone();
    let addr: IpAddr = addr.parse().expect("address");
    p.decide_connect(
        &g,
        &ConnectAttempt {
            addr,
            port,
            transport,
        },
    )
}

#[test]
fn connect_cidr_ports_protocol() {
    let d = connect("ai", "10.20.3.4", 5432, Transport::Tcp);
    assert_eq!((d.action, rule_of(&d)), (Action::Approve, Some("db")));
    assert_eq!(
        rule_of(&connect("ai", "10.20.3.4", 8050, Transport::Tcp)),
        Some("db")
    );
    assert_eq!(
        rule_of(&connect("ai", "fd12::1", 8100, Transport::Tcp)),
        Some("db")
    );
    assert_eq!(
        rule_of(&connect("ai", "10.20.3.4", 8101, Transport::Tcp)),
        None
    );
    assert_eq!(
        rule_of(&connect("ai", "10.21.0.1", 5432, Transport::Tcp)),
        None
    );
    assert_eq!(
        rule_of(&connect("ai", "10.20.3.4", 5432, Transport::Udp)),
        None
    );
    let d = connect("ai", "1.1.1.1", 443, Transport::Tcp);
    assert_eq!(
        (d.action, rule_of(&d)),
        (Action::Deny, None),
        "ai's default network action"
    );
}

#[test]
fn ipv4_rules_match_ipv4_mapped_destinations() {
    assert_eq!(
        rule_of(&connect("ai", "::ffff:10.20.0.9", 5432, Transport::Tcp)),
        Some("db")
    );
    // A rule written IPv4-mapped matches plain IPv4 destinations too.
    assert_eq!(
        rule_of(&connect("bots", "192.168.1.1", 22, Transport::Tcp)),
        Some("v6-mapped")
    );
}

#[test]
fn udp_rule_and_agents() {
    assert_eq!(
        rule_of(&connect("ai", "9.9.9.9", 53, Transport::Udp)),
        Some("dns-udp")
    );
    assert_eq!(rule_of(&connect("ai", "9.9.9.9", 53, Transport::Tcp)), None);
    assert_eq!(
        rule_of(&connect("bots", "9.9.9.9", 53, Transport::Udp)),
        None
    );
}

#[test]
fn pick_group() {
    let p = policy(POLICY);
    assert_eq!(p.pick_group(Some("bots")).expect("known").name, "bots");
    assert_eq!(
        p.pick_group(Some("x")).expect_err("unknown").to_string(),
        "no agent group 'x' in the policy (groups: ai, bots)"
    );
    assert!(p.pick_group(None).is_err(), "two groups: one must be named");
    let one = policy(super::HEADER);
    assert_eq!(one.pick_group(None).expect("only group").name, "ai");
}

#[test]
fn arguments_too_long_to_compare_match_refusing_rules_only() {
    let long = "x".repeat(64);
    // approve rule: a 64-byte argv[1] cannot be compared, so it counts as a match; so does
    // a 63-byte one (the kernel cannot tell it from a longer one cut to its slot).
    for n in [64, 63] {
        let d = decide("ai", &exec(id(10), &["kubectl", &long[..n], "pod"], None));
        assert_eq!(rule_of(&d), Some("kubectl-mutations"), "{n} bytes");
    }
    // 62 bytes are compared whole.
    let d = decide("ai", &exec(id(10), &["kubectl", &long[..62], "pod"], None));
    assert_eq!(rule_of(&d), Some("kubectl-any"));
    let p = policy(&super::with_rules(
        "  - id: ok\n    exec: { args: [\"status\"] }\n    action: allow\n",
    ));
    let e = exec(id(1), &["git", &long], None);
    let m = crate::exec_mismatch(&p.rules[0], &p.agents[0], &e, &host());
    assert_eq!(m, Some(crate::Mismatch::LongArg { position: 1 }));
}

#[test]
fn a_file_a_session_wrote_gets_at_least_the_groups_agent_written_action() {
    let p = policy(&POLICY.replace(
        "    cgroup: /agents/bots\n",
        "    cgroup: /agents/bots\n    agent_written: approve\n",
    ));
    let bots = p.group("bots").expect("group").clone();
    let mut built = exec(id(99), &["./tool", "run"], None);
    assert_eq!(p.decide_exec(&bots, &built, &host()).action, Action::Allow);
    built.agent_written = true;
    let d = p.decide_exec(&bots, &built, &host());
    assert_eq!(
        (d.action, rule_of(&d)),
        (Action::Approve, Some("agent-written"))
    );
    assert_eq!(
        d.rule.as_ref().map(|r| r.number()),
        Some(agent_common::policy::AGENT_WRITTEN_RULE),
        "the rule number the kernel reports, so an ask ahead binds what the kernel compares"
    );
    // Stricter rules stand; a group without the knob adds nothing.
    let mut push = exec(id(13), &["git", "push", "o", "m", "--force"], None);
    push.agent_written = true;
    assert_eq!(p.decide_exec(&bots, &push, &host()).action, Action::Deny);
    let ai = p.group("ai").expect("group").clone();
    assert_eq!(p.decide_exec(&ai, &built, &host()).action, Action::Audit);
}
