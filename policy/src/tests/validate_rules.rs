//! Validation errors of rules, with their lines.

use super::{error, errors, policy, with_rules};

fn rule(body: &str) -> String {
    with_rules(&format!("  - id: r\n{body}"))
}

#[test]
fn rule_ids() {
    let e = error(&with_rules(
        "  - id: bad id\n    exec: { binary: /x }\n    action: deny\n",
    ));
    assert!(
        e.starts_with("p.yaml:6: rule 'bad id': rule id 'bad id' must match"),
        "{e}"
    );
    let e = error(&with_rules(
        "  - id: a\n    exec: { binary: /x }\n    action: deny\n  - id: a\n    exec: { binary: /y }\n    action: deny\n",
    ));
    assert_eq!(
        e,
        "p.yaml:9: rule 'a': duplicate rule id (first defined at p.yaml:6)"
    );
}

#[test]
fn duplicates_across_files_name_both_places() {
    let a = "version: 1\nagents:\n  - name: ai\n    cgroup: /a\nrules:\n  - id: x\n    exec: { binary: /x }\n    action: deny\n";
    let b = "version: 1\n\nagents:\n  - name: ai\n    cgroup: /b\nrules:\n  - id: x\n    exec: { binary: /y }\n    action: deny\n";
    let e = crate::Policy::from_sources([("a.yaml", a), ("b.yaml", b)]).expect_err("duplicates");
    let lines: Vec<String> = e.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "b.yaml:4: agent 'ai': duplicate agent group name (first defined at a.yaml:3)",
            "b.yaml:7: rule 'x': duplicate rule id (first defined at a.yaml:6)",
        ]
    );
}

#[test]
fn agents_of_a_rule() {
    let e = error(&rule(
        "    agents: [ai, other]\n    exec: { binary: /x }\n    action: deny\n",
    ));
    assert_eq!(
        e,
        "p.yaml:7: rule 'r': unknown agent group 'other' (defined: ai)"
    );
    let e = error(&rule(
        "    agents: []\n    exec: { binary: /x }\n    action: deny\n",
    ));
    assert_eq!(
        e,
        "p.yaml:7: rule 'r': agents: [] names no group; omit agents for every group"
    );
}

#[test]
fn exec_xor_network() {
    let e = error(&rule(
        "    exec: { binary: /x }\n    network: { ports: [1] }\n    action: deny\n",
    ));
    assert_eq!(
        e,
        "p.yaml:8: rule 'r': a rule has exec or network, not both: write two rules"
    );
    let e = error(&rule("    action: deny\n"));
    assert_eq!(e, "p.yaml:6: rule 'r': a rule needs exec or network");
}

#[test]
fn actions_and_approvers() {
    let e = error(&rule("    exec: { binary: /x }\n    action: block\n"));
    assert_eq!(
        e,
        "p.yaml:8: rule 'r': unknown action 'block' (expected allow, audit, deny or approve)"
    );
    let e = error(&rule(
        "    exec: { binary: /x }\n    action: deny\n    approvers: { groups: [sre] }\n",
    ));
    assert_eq!(
        e,
        "p.yaml:9: rule 'r': approvers only apply to rules with action approve"
    );
    let e = errors(&rule(
        "    exec: { binary: /x }\n    action: approve\n    approvers:\n      groups: [sre]\n      min: 0\n      grant: { uses: 9, ttl: 10 }\n",
    ));
    assert_eq!(
        e,
        [
            "p.yaml:11: rule 'r': approvers.min must be a number ≥ 1, not '0'",
            "p.yaml:12: rule 'r': grant.uses must be 0 (unlimited until the ttl) to 8, not '9'",
            "p.yaml:12: rule 'r': grant.ttl: '10' is not a duration: write a number and a unit (s, m, h, d), e.g. 10m or 1h30m",
        ]
    );
    let e = error(&rule(
        "    exec: { binary: /x }\n    action: approve\n    approvers: { min: 1 }\n",
    ));
    assert_eq!(
        e,
        "p.yaml:9: rule 'r': approvers need groups: [...] (who may approve)"
    );
    let p = policy(&rule("    exec: { binary: /x }\n    action: approve\n    approvers: { groups: sre, grant: { uses: 0, ttl: 1h30m } }\n"));
    let a = p.rules[0].approvers.as_ref().expect("approvers");
    assert_eq!(
        (a.groups.clone(), a.min, a.grant.uses, a.grant.ttl.as_secs()),
        (vec!["sre".to_owned()], 1, 0, 5400)
    );
}

#[test]
fn exec_paths() {
    let e = errors(&rule("    exec:\n      binary: [kubectl, \"\", /usr/bin/]\n      parent: relative\n    action: deny\n"));
    assert_eq!(
        e,
        [
            "p.yaml:8: rule 'r': binary 'kubectl' must be an absolute path (like /usr/bin/kubectl)",
            "p.yaml:8: rule 'r': binary path is empty",
            "p.yaml:8: rule 'r': binary '/usr/bin/' names a directory, not a file",
            "p.yaml:9: rule 'r': parent 'relative' must be an absolute path (like /usr/bin/relative)",
        ]
    );
    let e = error(&rule("    exec:\n      binary: []\n    action: deny\n"));
    assert_eq!(
        e,
        "p.yaml:8: rule 'r': binary: [] matches nothing; omit binary for any"
    );
}

#[test]
fn exec_rule_must_restrict_something() {
    let e = error(&rule("    exec: {}\n    action: deny\n"));
    assert!(
        e.starts_with(
            "p.yaml:7: rule 'r': this exec rule matches every exec: name a binary, args or parent"
        ),
        "{e}"
    );
    let e = error(&rule("    exec:\n      args: []\n    action: deny\n"));
    assert!(
        e.starts_with("p.yaml:7: rule 'r': this exec rule matches every exec"),
        "{e}"
    );
    // Arguments alone are a restriction (any binary).
    policy(&rule(
        "    exec: { args: [\"--force\"] }\n    action: audit\n",
    ));
}

#[test]
fn argument_patterns() {
    let cases = [
        ("\"del*\"", "argument pattern 'del*': 'del*' is a glob, but only whole values can be matched (prefix/suffix globs are not supported in the kernel): list the values as alternatives, like \"delete|describe\", or use \"*\" for any value"),
        ("\"a|*\"", "argument pattern 'a|*': \"*\" cannot be an alternative; write \"*\" alone for any value"),
        ("\"a||b\"", "argument pattern 'a||b' has an empty alternative"),
        ("\"\"", "empty argument pattern: use \"*\" for any value"),
        ("\"a\\0b\"", "argument pattern 'a\\0b' contains a NUL byte"),
    ];
    for (pattern, msg) in cases {
        let e = error(&rule(&format!(
            "    exec:\n      binary: /x\n      args:\n        - {pattern}\n    action: deny\n"
        )));
        assert_eq!(e, format!("p.yaml:10: rule 'r': {msg}"));
    }
    let long = "y".repeat(63);
    let e = error(&rule(&format!(
        "    exec: {{ args: [\"a|{long}\"] }}\n    action: deny\n"
    )));
    assert_eq!(
        e,
        format!("p.yaml:7: rule 'r': argument pattern alternative '{long}' is 63 bytes long; the kernel compares arguments of at most 62 bytes")
    );
    policy(&rule(&format!(
        "    exec: {{ args: [\"{}\"] }}\n    action: deny\n",
        &long[..62]
    )));
    let nine = ["\"*\""; 9].join(", ");
    let e = error(&rule(&format!(
        "    exec: {{ binary: /x, args: [{nine}] }}\n    action: deny\n"
    )));
    assert_eq!(
        e,
        "p.yaml:7: rule 'r': 9 argument patterns; at most 8 (argv[1] to argv[8])"
    );
}

#[test]
fn expansions_are_limited() {
    // 3 × 3 × 2 = 18 > 16.
    let e = error(&rule(
        "    exec:\n      args: [\"a|b|c\", \"d|e|f\", \"g|h\"]\n    action: deny\n",
    ));
    assert!(
        e.starts_with("p.yaml:7: rule 'r': this rule expands to 18 kernel slots"),
        "{e}"
    );
    // 4 × 2 alternatives × 2 parents = 16: fits.
    policy(&rule(
        "    exec:\n      args: [\"a|b|c|d\", \"e|f\"]\n      parent: [/p, /q]\n    action: deny\n",
    ));
    let e = error(&rule("    exec:\n      args: [\"a|b|c|d\", \"e|f\"]\n      parent: [/p, /q, /r]\n    action: deny\n"));
    assert!(e.contains("expands to 24 kernel slots"), "{e}");
}

#[test]
fn network_fields() {
    let e = errors(&rule(
        "    network:\n      cidr: [10.20.1.0/16, \"fd00::/300\", nonsense]\n      ports: [0, \"9000-8000\", http, 70000]\n      protocol: icmp\n    action: deny\n",
    ));
    assert_eq!(
        e,
        [
            "p.yaml:8: rule 'r': '10.20.1.0/16' has host bits set: the network is 10.20.0.0/16",
            "p.yaml:8: rule 'r': 'fd00::/300': prefix length must be a number 0-128",
            "p.yaml:8: rule 'r': 'nonsense' is not an address prefix: expected like 10.0.0.0/8 or fd00::/8",
            "p.yaml:9: rule 'r': port '0' is out of range (1-65535)",
            "p.yaml:9: rule 'r': port range '9000-8000' is empty: 9000 is above 8000",
            "p.yaml:9: rule 'r': invalid port 'http': expected a number 1-65535 or a range like 8000-8100",
            "p.yaml:9: rule 'r': port '70000' is out of range (1-65535)",
            "p.yaml:10: rule 'r': unknown protocol 'icmp' (expected tcp, udp or any)",
        ]
    );
}

#[test]
fn network_rule_must_restrict_something() {
    let e = error(&rule("    network: { protocol: tcp }\n    action: deny\n"));
    assert!(
        e.starts_with("p.yaml:7: rule 'r': this network rule matches every connection"),
        "{e}"
    );
    let e = error(&rule("    network: { cidr: [] }\n    action: deny\n"));
    assert_eq!(
        e,
        "p.yaml:7: rule 'r': cidr: [] matches nothing; omit cidr for any address"
    );
}

#[test]
fn domains_are_not_supported_yet() {
    let e = error(&rule(
        "    network:\n      domains: [api.example.com]\n      ports: [443]\n    action: allow\n",
    ));
    assert!(
        e.starts_with("p.yaml:8: rule 'r': domains are not supported yet:"),
        "{e}"
    );
}

#[test]
fn network_slots_are_limited() {
    let ports: Vec<String> = (1..=17).map(|p| p.to_string()).collect();
    let e = error(&rule(&format!(
        "    network: {{ ports: [{}] }}\n    action: deny\n",
        ports.join(", ")
    )));
    assert!(
        e.starts_with("p.yaml:7: rule 'r': this rule expands to 17 kernel slots"),
        "{e}"
    );
}

#[test]
fn all_errors_are_collected() {
    let text = "version: 1\nagents:\n  - name: A\n    cgroup: rel\nrules:\n  - id: r1\n    exec: {}\n    action: nope\n  - id: r2\n    network: { ports: [0] }\n    action: deny\n";
    assert_eq!(errors(text).len(), 5, "{:#?}", errors(text));
}
