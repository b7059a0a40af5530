//! Synthetic event logs: what a busy host daemon uploads — audited execs with their argv and
//! parent chain, audited and refused connects, and about one record in five an exec refused
//! by an `approve` rule, spread over a few fingerprints so that requests open and then join.
//! Deterministic per daemon (a seeded xorshift), so every run uploads the same records.

use std::time::{Duration, SystemTime};

use countersign_api::pb::{Destination, EventRecord, Operation, OperationKind, ParentProcess};
use countersign_api::verdict::{Action, Judged, Mode, Outcome};

/// Distinct operations refused by the approve rule, per daemon: one pending request each.
pub const FINGERPRINTS: u64 = 4;
/// Agent group of every synthetic event.
pub const GROUP: &str = "coding-agents";
/// The approve rule (unknown to the server's policy: its default approvers apply).
pub const APPROVE_RULE: &str = "bench-approve";

/// One synthetic daemon's upload, in batches.
pub struct Log {
    /// Host name (its certificate's).
    pub host: String,
    pub batches: Vec<Vec<EventRecord>>,
    /// Records in all batches (the last sequence: sequences run 1..=events).
    pub events: u64,
    /// Records refused by the approve rule (attempts the server must count).
    pub approve: u64,
    /// Distinct fingerprints among them (requests the server must open).
    pub fingerprints: u64,
}

/// Daemon number `k`'s log of `events` records, cut in batches of `batch`.
pub fn log(k: usize, host: &str, events: u64, batch: usize) -> Log {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (k as u64 + 1).wrapping_mul(0xbf58_476d_1ce4_e5b9));
    let start = SystemTime::now() - Duration::from_secs(3600);
    let mut records = Vec::with_capacity(events as usize);
    let mut approve = 0;
    let mut seen = [false; FINGERPRINTS as usize];
    for seq in 1..=events {
        let time = start + Duration::from_millis(seq * 7);
        let roll = rng.next() % 100;
        let record = if roll < 20 {
            let f = rng.next() % FINGERPRINTS;
            approve += 1;
            seen[f as usize] = true;
            approve_refusal(k, f)
        } else if roll < 25 {
            metadata_refusal(&mut rng)
        } else if roll < 40 {
            audited_connect(&mut rng)
        } else {
            audited_exec(&mut rng)
        };
        records.push(finish(record, k, seq, time, &mut rng));
    }
    let batches = records
        .chunks(batch.max(1))
        .map(<[EventRecord]>::to_vec)
        .collect();
    Log {
        host: host.to_owned(),
        batches,
        events,
        approve,
        fingerprints: seen.iter().filter(|s| **s).count() as u64,
    }
}

/// A judged operation, as a daemon in fallback mode uploads it.
fn judged(
    kind: OperationKind,
    action: Action,
    outcome: Outcome,
    rule: &str,
    operation: Operation,
) -> EventRecord {
    let mut e = EventRecord {
        kind: kind as i32,
        rule: rule.to_owned(),
        operation: Some(operation),
        ..EventRecord::default()
    };
    Judged {
        action,
        outcome,
        mode: Mode::Fallback,
    }
    .stamp(&mut e);
    e
}

/// The fields every record has, filled in around the kind-specific part.
fn finish(mut e: EventRecord, k: usize, seq: u64, time: SystemTime, rng: &mut Rng) -> EventRecord {
    e.sequence = seq;
    e.time = Some(time.into());
    let op = e.operation.get_or_insert_with(Operation::default);
    let session = format!("s-{}-1763900000", 4000 + k);
    op.agent_group = GROUP.into();
    op.cgroup = format!("/countersign/{GROUP}/{session}");
    op.session = session;
    op.cgroup_id = 9000 + k as u64;
    op.launching_user = format!("dev{k}");
    op.uid = 1000 + k as u32;
    op.gid = 1000;
    let pid = 10_000 + (rng.next() % 50_000) as u32;
    op.pid = pid;
    op.tgid = pid;
    op.parents = vec![
        parent(pid - 1, "bash", "/usr/bin/bash"),
        parent(pid - 7, "node", "/usr/bin/node"),
        parent(4000 + k as u32, "bash", "/usr/bin/bash"),
    ];
    if op.fingerprint.is_empty() {
        op.fingerprint = format!("{:016x}", rng.next());
    }
    e
}

fn parent(pid: u32, comm: &str, exe: &str) -> ParentProcess {
    ParentProcess {
        pid,
        comm: comm.into(),
        exe: exe.into(),
    }
}

fn exec(binary: &str, argv: &[String], inode: u64) -> Operation {
    Operation {
        comm: binary
            .rsplit('/')
            .next()
            .unwrap_or(binary)
            .chars()
            .take(15)
            .collect(),
        binary: binary.into(),
        device: "254:0".into(),
        inode,
        argv: argv.to_vec(),
        ..Operation::default()
    }
}

/// `kubectl delete deploy web-F`, refused by the approve rule (fallback mode: killed).
fn approve_refusal(k: usize, f: u64) -> EventRecord {
    let argv = [
        "kubectl",
        "delete",
        "deploy",
        &format!("web-{f}"),
        "-n",
        "prod",
    ]
    .map(String::from);
    let mut op = exec("/usr/bin/kubectl", &argv, 262_144);
    op.fingerprint = format!("{:016x}", (k as u64 + 1) << 32 | (f + 1));
    judged(
        OperationKind::Exec,
        Action::Approve,
        Outcome::Killed,
        APPROVE_RULE,
        op,
    )
}

/// A connect to the cloud metadata service, denied.
fn metadata_refusal(rng: &mut Rng) -> EventRecord {
    let argv = ["curl", "-s", "http://169.254.169.254/latest/meta-data/"].map(String::from);
    let mut op = exec("/usr/bin/curl", &argv, 262_200 + rng.next() % 3);
    op.destination = Some(destination("169.254.169.254", 80));
    judged(
        OperationKind::Connect,
        Action::Deny,
        Outcome::Refused,
        "cloud-metadata",
        op,
    )
}

/// A connect to a package mirror or an API, audited.
fn audited_connect(rng: &mut Rng) -> EventRecord {
    let address = format!(
        "10.{}.{}.{}",
        rng.next() % 256,
        rng.next() % 256,
        1 + rng.next() % 254
    );
    let argv = ["python3", "-m", "pip", "install", "-r", "requirements.txt"].map(String::from);
    let mut op = exec("/usr/bin/python3.11", &argv, 263_000);
    op.destination = Some(destination(&address, 443));
    judged(
        OperationKind::Connect,
        Action::Audit,
        Outcome::Allowed,
        "egress-audit",
        op,
    )
}

/// An exec of a developer tool, audited.
fn audited_exec(rng: &mut Rng) -> EventRecord {
    const TOOLS: [(&str, &[&str]); 6] = [
        (
            "/usr/bin/git",
            &["git", "commit", "-m", "fix the flaky test"],
        ),
        (
            "/usr/bin/cargo",
            &["cargo", "build", "--release", "-p", "server"],
        ),
        ("/usr/bin/ls", &["ls", "-la", "/workspace/src"]),
        ("/usr/bin/grep", &["grep", "-rn", "TODO", "src/"]),
        (
            "/usr/bin/python3.11",
            &["python3", "scripts/migrate.py", "--dry-run"],
        ),
        ("/usr/bin/sed", &["sed", "-i", "s/foo/bar/g", "src/lib.rs"]),
    ];
    let (binary, args) = TOOLS[(rng.next() % TOOLS.len() as u64) as usize];
    let mut argv: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    argv.push(format!("--job={}", rng.next() % 10_000));
    judged(
        OperationKind::Exec,
        Action::Audit,
        Outcome::Allowed,
        "tools-audit",
        exec(binary, &argv, 262_300 + rng.next() % 6),
    )
}

fn destination(address: &str, port: u32) -> Destination {
    Destination {
        address: address.into(),
        port,
        protocol: "tcp".into(),
        family: "ipv4".into(),
    }
}

/// xorshift64*: plenty for spreading synthetic records, and no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_in_batches() {
        let l = log(3, "bench-3", 2500, 1000);
        assert_eq!(
            l.batches.iter().map(Vec::len).collect::<Vec<_>>(),
            [1000, 1000, 500]
        );
        let all: Vec<&EventRecord> = l.batches.iter().flatten().collect();
        assert!(all.iter().zip(1..).all(|(e, s)| e.sequence == s));
        let approve = all
            .iter()
            .filter(|e| e.rule_action() == countersign_api::pb::Action::Approve)
            .count() as u64;
        assert_eq!(approve, l.approve);
        assert!((400..600).contains(&approve), "about 20 %: {approve}");
        assert_eq!(l.fingerprints, FINGERPRINTS);
        assert!(all.iter().all(|e| e
            .operation
            .as_ref()
            .is_some_and(|o| o.fingerprint.len() == 16)));
        // The same daemon uploads the same operations every run (only the times move).
        let ops = |l: Log| -> Vec<Option<Operation>> {
            l.batches
                .into_iter()
                .flatten()
                .map(|e| e.operation)
                .collect()
        };
        assert_eq!(ops(log(3, "bench-3", 10, 5)), ops(log(3, "bench-3", 10, 5)));
    }
}
