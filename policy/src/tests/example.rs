//! The shipped example policy validates, decides as its comments say, and explains itself.

use std::path::PathBuf;

use super::{id, MapResolver};
use crate::{
    explain_connect, explain_exec, Action, ConnectAttempt, ExecAttempt, Policy, Transport,
};

fn example() -> Policy {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/policy.yaml");
    Policy::load(&[path]).unwrap_or_else(|e| panic!("example policy must validate:\n{e}"))
}

fn host() -> MapResolver {
    MapResolver::with(&[
        ("/usr/bin/kubectl", 1),
        ("/usr/bin/rm", 2),
        ("/bin/rm", 2),
        ("/usr/bin/ssh", 3),
    ])
}

fn exec(binary: u64, argv: &[&str]) -> ExecAttempt {
    let argv = argv.iter().map(|a| a.as_bytes().to_vec()).collect();
    ExecAttempt {
        binary: id(binary),
        binary_path: Some("/usr/bin/kubectl".into()),
        argv,
        parent: None,
        agent_written: false,
    }
}

#[test]
fn example_validates_and_compiles() {
    let p = example();
    assert_eq!(p.agents.len(), 1);
    assert_eq!(p.agents[0].cgroup, "/countersign/coding-agents");
    let ids: Vec<&str> = p.rules.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "kubectl-mutations",
            "recursive-delete",
            "firewall",
            "ssh",
            "cloud-metadata",
            "prod-db"
        ]
    );
    let c = crate::compile(&p, 0, &host()).expect("compiles");
    // /usr/local/bin/kubectl and the three firewall tools are not on this (resolver's) host,
    // which leaves the firewall rule without any binary.
    assert_eq!(c.warnings.len(), 5, "{:#?}", c.warnings);
}

#[test]
fn explain_exec_names_the_rule_and_earlier_misses() {
    let p = example();
    let g = p.pick_group(None).expect("one group");
    let x = explain_exec(&p, g, &exec(1, &["kubectl", "delete", "pod", "x"]), &host());
    assert_eq!(x.decision.action, Action::Approve);
    assert!(x.text.contains("rule 'kubectl-mutations'"), "{x}");
    assert!(x.text.contains("decision: APPROVE"), "{x}");
    assert!(x.text.contains("approved by 1 of groups sre"), "{x}");

    let x = explain_exec(&p, g, &exec(1, &["kubectl", "get", "pods"]), &host());
    assert_eq!(
        (x.decision.action, x.decision.rule.clone()),
        (Action::Allow, None)
    );
    assert!(
        x.text
            .contains("argument 1 \"get\" does not match delete|apply|scale|edit|patch"),
        "{x}"
    );
    assert!(
        x.text
            .contains("/usr/local/bin/kubectl does not exist on this host")
            || x.text.contains("binary is none"),
        "{x}"
    );
    assert!(
        x.text.contains("(2 rules of the other kind skipped)"),
        "{x}"
    );
    assert!(
        x.text
            .contains("default exec action of agent group 'coding-agents'"),
        "{x}"
    );
}

#[test]
fn explain_connect_metadata() {
    let p = example();
    let g = p.pick_group(Some("coding-agents")).expect("group");
    let c = ConnectAttempt {
        addr: "169.254.169.254".parse().expect("ip"),
        port: 80,
        transport: Transport::Tcp,
    };
    let x = explain_connect(&p, g, &c);
    assert_eq!(
        x.decision.rule.as_ref().map(|r| r.id.as_str()),
        Some("cloud-metadata")
    );
    assert_eq!(x.decision.action, Action::Deny);
    assert!(
        x.text
            .starts_with("connect to 169.254.169.254 port 80 (tcp)"),
        "{x}"
    );
    let c = ConnectAttempt {
        addr: "10.20.1.1".parse().expect("ip"),
        port: 5432,
        transport: Transport::Udp,
    };
    let x = explain_connect(&p, g, &c);
    assert_eq!(x.decision.action, Action::Allow);
    assert!(
        x.text.contains("rule 'prod-db'") && x.text.contains("the rule is for tcp only"),
        "{x}"
    );
}
