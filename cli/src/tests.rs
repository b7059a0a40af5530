//! Command-line parsing: what is accepted, what is a usage error (exit 2).

use std::ffi::OsString;
use std::time::Duration;

use clap::{CommandFactory, Parser};

use super::*;

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("countersign").chain(args.iter().copied()))
}

fn usage_error(args: &[&str]) {
    let e = parse(args).expect_err(&format!("{args:?} should not parse"));
    assert_eq!(e.exit_code(), 2, "{args:?}: {e}");
}

#[test]
fn clap_definition_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn exec_takes_everything_after_the_separator() {
    let cli = parse(&[
        "exec",
        "--timeout",
        "5m",
        "--",
        "kubectl",
        "delete",
        "--force",
        "x",
    ])
    .expect("parse");
    let Command::Exec(args) = cli.command else {
        panic!("not exec")
    };
    assert_eq!(args.timeout, Duration::from_secs(300));
    let want: Vec<OsString> = ["kubectl", "delete", "--force", "x"]
        .iter()
        .map(OsString::from)
        .collect();
    assert_eq!(args.command, want);
    // Flags of the command are the command's, even ones countersign also has.
    let cli = parse(&["exec", "--", "tool", "--server", "--timeout"]).expect("parse");
    let Command::Exec(args) = cli.command else {
        panic!("not exec")
    };
    assert_eq!(args.command.len(), 3);
    assert_eq!(cli.server.server, connect::DEFAULT_SERVER);
    usage_error(&["exec"]);
    usage_error(&["exec", "--timeout", "soon", "--", "ls"]);
}

#[test]
fn approve_needs_exactly_one_way() {
    let cli = parse(&["approve", "r-3f9a1c02de", "--for", "10m", "--uses", "3"]).expect("parse");
    let Command::Approve(args) = cli.command else {
        panic!("not approve")
    };
    assert_eq!(args.for_, Some(Duration::from_secs(600)));
    assert_eq!(args.uses, Some(3));
    assert!(parse(&["approve", "r-1", "--once"]).is_ok());
    usage_error(&["approve", "r-1"]);
    usage_error(&["approve", "r-1", "--once", "--for", "10m"]);
    usage_error(&["approve", "r-1", "--once", "--uses", "2"]);
    usage_error(&["approve", "r-1", "--for", "0s"]);
    usage_error(&["approve", "--once"]);
}

#[test]
fn deny_and_revoke_need_a_reason() {
    assert!(parse(&["deny", "r-1", "--reason", "not now"]).is_ok());
    usage_error(&["deny", "r-1"]);
    usage_error(&["deny", "r-1", "--reason", "  "]);
    usage_error(&["revoke", "3f00aa11bb22cc33"]);
    usage_error(&["request", "--", "ls"]);
}

#[test]
fn global_flags_go_anywhere() {
    let cli = parse(&[
        "pending",
        "--server",
        "https://cp:7443",
        "--as",
        "alice",
        "--json",
    ])
    .expect("parse");
    assert_eq!(cli.server.server, "https://cp:7443");
    assert_eq!(cli.server.as_person.as_deref(), Some("alice"));
    let cli = parse(&["--cert", "c.pem", "--key", "k.pem", "show", "r-1"]).expect("parse");
    assert!(cli.server.cert.is_some() && cli.server.key.is_some());
}

#[test]
fn audit_filters() {
    let cli = parse(&[
        "audit",
        "export",
        "--format",
        "csv",
        "--since",
        "1h",
        "--until",
        "2026-11-23T14:00:00Z",
        "--host",
        "build-01",
        "-o",
        "out.csv",
    ])
    .expect("parse");
    let Command::Audit(AuditCommand::Export(args)) = cli.command else {
        panic!("not export")
    };
    assert!(args.filter.since.is_some() && args.filter.until.is_some());
    assert!(args.filter.skips_records());
    usage_error(&["audit", "export", "--format", "xml"]);
    usage_error(&["audit", "export", "--since", "yesterday"]);
    usage_error(&["audit", "verify"]);
}

#[test]
fn certs_and_policy() {
    assert!(parse(&["certs", "init", "--dir", "/tmp/x"]).is_ok());
    assert!(parse(&["certs", "person", "alice"]).is_ok());
    usage_error(&["certs", "host"]);
    assert!(parse(&["policy", "get"]).is_ok());
    assert!(parse(&["policy", "push", "p.yaml", "--comment", "c", "--base", "3"]).is_ok());
    usage_error(&["policy", "push"]);
}
