//! The `approvers` block: defaults, request expiry, launcher approval, and `parse_str`.

use std::time::Duration;

use super::{errors, policy, with_rules};
use crate::{Approvers, Policy};

fn approve_rule(approvers: &str) -> String {
    with_rules(&format!(
        "  - id: r\n    exec: {{ binary: /x }}\n    action: approve\n    approvers:\n{approvers}"
    ))
}

fn approvers_of(text: &str) -> Approvers {
    let p = policy(text);
    p.rules[0].approvers.clone().expect("approvers")
}

#[test]
fn defaults() {
    let a = approvers_of(&approve_rule("      groups: [sre]\n"));
    assert_eq!(a.groups, ["sre"]);
    assert_eq!(a.min, 1);
    assert_eq!((a.grant.uses, a.grant.ttl), (1, Duration::from_secs(600)));
    assert_eq!(a.expires, Duration::from_secs(3600));
    assert_eq!(a.expires, Approvers::DEFAULT_EXPIRES);
    assert!(!a.allow_launcher);
}

#[test]
fn every_field() {
    let a = approvers_of(&approve_rule(
        "      groups: [sre, dba]\n      min: 2\n      grant: { uses: 3, ttl: 30m }\n      expires: 15m\n      allow_launcher: true\n",
    ));
    assert_eq!(a.groups, ["sre", "dba"]);
    assert_eq!(a.min, 2);
    assert_eq!((a.grant.uses, a.grant.ttl), (3, Duration::from_secs(1800)));
    assert_eq!(a.expires, Duration::from_secs(900));
    assert!(a.allow_launcher);
    let a = approvers_of(&approve_rule(
        "      groups: [sre]\n      allow_launcher: false\n",
    ));
    assert!(!a.allow_launcher);
}

#[test]
fn bad_expiry_and_launcher_name_the_line() {
    let e = errors(&approve_rule(
        "      groups: [sre]\n      expires: 0s\n      allow_launcher: yes\n",
    ));
    assert_eq!(
        e,
        [
            "p.yaml:11: rule 'r': approvers.expires: '0s' is zero: write a duration longer than 0",
            "p.yaml:12: rule 'r': approvers.allow_launcher must be true or false, not 'yes'",
        ]
    );
    let e = errors(&approve_rule("      groups: [sre]\n      expires: soon\n"));
    assert_eq!(
        e,
        ["p.yaml:11: rule 'r': approvers.expires: 'soon' is not a duration: write a number and a unit (s, m, h, d), e.g. 10m or 1h30m"]
    );
}

#[test]
fn unknown_approvers_field_refused() {
    let e = errors(&approve_rule("      groups: [sre]\n      expire: 1h\n"));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("p.yaml:11: rule 'r': "), "{e:?}");
    assert!(e[0].contains("expire"), "{e:?}");
}

#[test]
fn parse_str_validates_like_load() {
    let text = approve_rule("      groups: [sre]\n      min: 2\n");
    let p = Policy::parse_str("revision r-1", &text).expect("valid");
    assert_eq!(p.rules[0].approvers.as_ref().map(|a| a.min), Some(2));
    let e =
        Policy::parse_str("<api>", &approve_rule("      groups: []\n")).expect_err("empty groups");
    let lines: Vec<String> = e.iter().map(ToString::to_string).collect();
    assert_eq!(lines, ["<api>:10: rule 'r': approvers.groups is empty"]);
}
