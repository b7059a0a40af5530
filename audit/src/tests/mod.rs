//! Tests across modules: a chain written, exported, tampered with and verified.

mod checkpoints;
mod exports;
mod garbage;
mod tamper;

use std::num::NonZeroU64;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::json;

use super::export::jsonl;
use super::{
    verify, verify_with, Actor, ActorKind, Chain, Destination, Entry, Filter, Kind, Operation,
    Record, SigningKey, Subject, Summary, Timestamp, VerifyError,
};

/// The server's checkpoint key in tests.
fn key() -> SigningKey {
    SigningKey::from_bytes(&[42; 32])
}

/// 2026-11-23T14:00:00.000Z plus `ms`.
fn at(ms: u64) -> Timestamp {
    Timestamp::from_system_time(UNIX_EPOCH + Duration::from_millis(1_795_442_400_000 + ms))
}

fn exec_attempt() -> Entry {
    let mut details = serde_json::Map::new();
    details.insert("pid".into(), json!(4250));
    details.insert("mode".into(), json!("lsm"));
    Entry {
        kind: Kind::Attempt,
        actor: Actor {
            kind: ActorKind::Agent,
            id: "coding-agents/s-4242".into(),
            channel: Some("kernel".into()),
        },
        subject: Subject {
            host: Some("build-01".into()),
            agent: Some("coding-agents".into()),
            session: Some("s-4242".into()),
            operation: Some(Operation::Exec),
            rule: Some("kubectl-mutations".into()),
            action: Some("approve".into()),
            decision: Some("refused".into()),
            request_id: Some("req-7".into()),
            fingerprint: Some("9a3f00112233aabb".into()),
            binary: Some("/usr/bin/kubectl".into()),
            argv: Some(vec![
                "kubectl".into(),
                "delete".into(),
                "pod".into(),
                "web, \"x\"".into(),
            ]),
            details,
            ..Subject::default()
        },
    }
}

fn connect_attempt() -> Entry {
    Entry {
        kind: Kind::Attempt,
        actor: Actor {
            kind: ActorKind::Agent,
            id: "ops-bots/s-9".into(),
            channel: Some("kernel".into()),
        },
        subject: Subject {
            host: Some("build-02".into()),
            agent: Some("ops-bots".into()),
            session: Some("s-9".into()),
            operation: Some(Operation::Connect),
            rule: Some("prod-db".into()),
            action: Some("deny".into()),
            decision: Some("refused".into()),
            fingerprint: Some("00ff00ff00ff00ff".into()),
            destination: Some(Destination {
                address: "10.20.0.5".into(),
                port: 5432,
                protocol: "tcp".into(),
                family: "ipv4".into(),
            }),
            ..Subject::default()
        },
    }
}

fn decision(person: &str, verdict: &str) -> Entry {
    Entry {
        kind: Kind::Decision,
        actor: Actor {
            kind: ActorKind::Person,
            id: person.into(),
            channel: Some("slack".into()),
        },
        subject: Subject {
            host: Some("build-01".into()),
            agent: Some("coding-agents".into()),
            rule: Some("kubectl-mutations".into()),
            decision: Some(verdict.into()),
            request_id: Some("req-7".into()),
            reason: Some("=HYPERLINK(\"http://evil\")".into()),
            ..Subject::default()
        },
    }
}

/// The i-th entry of a test chain: a mix of every kind.
fn entry(i: u64) -> Entry {
    let mut e = match i % 5 {
        0 => exec_attempt(),
        1 => connect_attempt(),
        2 => decision("alice", "approved"),
        3 => Entry {
            kind: Kind::Grant,
            actor: Actor {
                kind: ActorKind::Server,
                id: "cs-1".into(),
                channel: None,
            },
            subject: Subject {
                grant_id: Some(format!("g-{i}")),
                ..Subject::default()
            },
        },
        _ => Entry {
            kind: Kind::Login,
            actor: Actor {
                kind: ActorKind::Person,
                id: "bob".into(),
                channel: Some("cli".into()),
            },
            subject: Subject::default(),
        },
    };
    e.subject.details.insert("i".into(), json!(i));
    e
}

/// A chain of `n` entries with a checkpoint every `interval`.
fn chain(n: u64, interval: u64) -> Chain {
    let interval = NonZeroU64::new(interval).expect("non-zero interval");
    let mut chain = Chain::new(key(), interval, "cs-1");
    for i in 0..n {
        chain.append(entry(i), at(i * 250)).expect("append");
    }
    chain
}

/// The JSON Lines export of `records`, as lines.
fn lines(records: &[Record]) -> Vec<String> {
    let mut out = Vec::new();
    jsonl::write(records, &Filter::default(), &mut out).expect("export");
    String::from_utf8(out)
        .expect("utf-8")
        .lines()
        .map(str::to_owned)
        .collect()
}

fn verify_lines(lines: &[String]) -> Result<Summary, VerifyError> {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    verify(text.as_bytes(), &key().verifying_key())
}
