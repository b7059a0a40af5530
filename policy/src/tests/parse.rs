//! YAML syntax and schema errors: file, line (and column for syntax).

use super::{error, errors, policy, with_rules, HEADER};

#[test]
fn syntax_error_names_line_and_column() {
    let e = error("version: 1\nagents:\n  - name: [ai\n");
    assert!(e.starts_with("p.yaml:4:1: YAML syntax error:"), "{e}");
}

#[test]
fn anchors_tags_and_duplicate_keys_are_refused() {
    let e = error("version: 1\nagents: &a []\n");
    assert_eq!(e, "p.yaml:2:12: YAML anchors and aliases are not supported");
    let e = error("version: !!str 1\n");
    assert!(
        e.starts_with("p.yaml:1:") && e.ends_with("YAML tags are not supported"),
        "{e}"
    );
    let e = error("version: 1\nversion: 1\n");
    assert_eq!(e, "p.yaml:2:1: duplicate key 'version' (first at line 1)");
}

#[test]
fn several_documents_are_refused() {
    let e = error(&format!("{HEADER}---\nrules: []\n"));
    assert_eq!(
        e,
        "p.yaml:5: several YAML documents in one file are not supported: put each in its own file"
    );
    // A leading marker and a final end marker are one document.
    policy(&format!("--- # policy\n{HEADER}...\n"));
}

#[test]
fn top_level_must_be_a_mapping() {
    let e = error("- version: 1\n");
    assert!(
        e.starts_with("p.yaml:1:1: the file must be a mapping"),
        "{e}"
    );
    let e = error(&format!("{HEADER}extra: 1\n"));
    assert_eq!(
        e,
        "p.yaml:5: unknown key 'extra' (expected version, agents, rules)"
    );
    let e = error("version: 1\nagents: yes\n");
    assert_eq!(e, "p.yaml:2: agents must be a list");
}

#[test]
fn unknown_fields_name_the_field_line_and_rule() {
    let e = errors(&with_rules(
        "  - id: a\n    exec:\n      binary: /x\n      bianry: /y\n    action: deny\n  - id: b\n    network: { ports: [1] }\n    action: deny\n    colour: red\n",
    ));
    assert_eq!(e.len(), 2, "{e:#?}");
    assert!(
        e[0].starts_with("p.yaml:9: rule 'a': exec.bianry: Unknown field `bianry`"),
        "{}",
        e[0]
    );
    assert!(
        e[1].starts_with("p.yaml:14: rule 'b': colour: Unknown field `colour`"),
        "{}",
        e[1]
    );
}

#[test]
fn missing_and_mistyped_fields() {
    let e = error(&with_rules("  - id: a\n    exec: { binary: /x }\n"));
    assert_eq!(e, "p.yaml:6: rule 'a': missing field `action`");
    let e = error(&with_rules(
        "  - id: a\n    exec: { binary: { path: /x } }\n    action: deny\n",
    ));
    assert!(
        e.starts_with("p.yaml:7: rule 'a': exec.binary: invalid type: map"),
        "{e}"
    );
    let e = error("version: 1\nagents:\n  - cgroup: /x\n");
    assert_eq!(e, "p.yaml:3: missing field `name`");
}

#[test]
fn single_values_and_lists_are_both_accepted() {
    let p = policy(&with_rules(
        "  - id: a\n    agents: ai\n    exec: { binary: /x, parent: [/p, /q] }\n    action: deny\n  - id: b\n    network: { cidr: 10.0.0.0/8, ports: 443 }\n    action: deny\n",
    ));
    assert_eq!(p.rules[0].agents, vec!["ai".to_owned()]);
    let crate::Match::Exec(m) = &p.rules[0].matcher else {
        panic!("exec rule")
    };
    assert_eq!((m.binaries.len(), m.parents.len()), (1, 2));
    assert_eq!(m.parents[1].line, 8);
}

#[test]
fn errors_of_several_files_come_in_file_order() {
    let a = "version: 1\nagents:\n  - name: ai\n    cgroup: /a\n    monitor: maybe\n";
    let b = "version: 2\nrules:\n  - id: X\n    exec: { binary: /x }\n    action: deny\n";
    let e = crate::Policy::from_sources([("a.yaml", a), ("b.yaml", b)]).expect_err("invalid");
    let lines: Vec<String> = e.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "a.yaml:5: agent 'ai': monitor must be true or false, not 'maybe'",
            "b.yaml:1: unsupported version '2': this agent reads version 1",
            "b.yaml:3: rule 'X': rule id 'X' must match [a-z0-9][a-z0-9._-]* (lower case, digits, . _ -)",
        ]
    );
}

#[test]
fn unreadable_file() {
    let e = crate::Policy::load(&["/nonexistent/countersign.yaml".into()]).expect_err("missing");
    let e = e.to_string();
    assert!(
        e.starts_with("/nonexistent/countersign.yaml: cannot read the file:"),
        "{e}"
    );
}
