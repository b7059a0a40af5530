use std::num::NonZeroU64;
use std::time::{Duration, UNIX_EPOCH};

use countersign_audit::export::jsonl;
use countersign_audit::{Actor, ActorKind, Chain, Entry, Kind, SigningKey, Subject, Timestamp};

use super::*;

fn signing_key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

/// An export of `n` records with a checkpoint every 4, as JSON lines.
fn export(n: u64) -> Vec<String> {
    export_every(n, 4)
}

/// An export of `n` records with a checkpoint every `every`, as JSON lines.
fn export_every(n: u64, every: u64) -> Vec<String> {
    export_from_hosts(n, every, |i| format!("host-{}", i % 2))
}

/// [`export_every`] with record `i` about host `host(i)`.
fn export_from_hosts(n: u64, every: u64, host: impl Fn(u64) -> String) -> Vec<String> {
    let interval = NonZeroU64::new(every).expect("nonzero");
    let mut chain = Chain::new(signing_key(), interval, "test-server");
    for i in 0..n {
        let entry = Entry {
            kind: Kind::Attempt,
            actor: Actor {
                kind: ActorKind::Agent,
                id: "coding-agents/s-1".into(),
                channel: None,
            },
            subject: Subject {
                host: Some(host(i)),
                ..Subject::default()
            },
        };
        let t = UNIX_EPOCH + Duration::from_secs(1_795_442_400 + i);
        chain
            .append(entry, Timestamp::from_system_time(t))
            .expect("append");
    }
    chain
        .records()
        .iter()
        .map(|r| jsonl::to_line(r).expect("line").trim_end().to_owned())
        .collect()
}

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = hex(signing_key().verifying_key().as_bytes());
        std::fs::write(dir.path().join("key.pub"), format!("{key}\n")).expect("key");
        Files { dir }
    }

    fn verify(&self, lines: &[String]) -> Outcome {
        self.verify_with(lines, None, false)
    }

    fn verify_with(&self, lines: &[String], from: Option<u64>, allow_tail: bool) -> Outcome {
        let file = self.dir.path().join("trail.jsonl");
        std::fs::write(&file, lines.join("\n") + "\n").expect("write");
        run(&VerifyArgs {
            from_checkpoint: from,
            allow_unsigned_tail: allow_tail,
            ..self.args(file)
        })
    }

    fn args(&self, file: std::path::PathBuf) -> VerifyArgs {
        VerifyArgs {
            file,
            key: self.dir.path().join("key.pub"),
            from_checkpoint: None,
            allow_unsigned_tail: false,
            published: None,
        }
    }

    /// Verifies `lines` against `published` lines (the server's checkpoint log).
    fn verify_published(&self, lines: &[String], published: &[String]) -> Outcome {
        let file = self.dir.path().join("trail.jsonl");
        std::fs::write(&file, lines.join("\n") + "\n").expect("write");
        let log = self.dir.path().join("published.jsonl");
        std::fs::write(&log, published.join("\n") + "\n").expect("write");
        run(&VerifyArgs {
            published: Some(log),
            ..self.args(file)
        })
    }
}

/// Indexes (= seqs) of the checkpoint lines of an export.
fn checkpoints(lines: &[String]) -> Vec<usize> {
    lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.contains("\"kind\":\"checkpoint\""))
        .map(|(i, _)| i)
        .collect()
}

/// `lines` cut after their last checkpoint: an export as the server makes it.
fn signed(mut lines: Vec<String>) -> Vec<String> {
    let last = *checkpoints(&lines).last().expect("a checkpoint");
    lines.truncate(last + 1);
    lines
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn failure(outcome: Outcome) -> Failure {
    outcome.expect_err("should fail")
}

#[test]
fn whole_export_verifies() {
    let files = Files::new();
    assert_eq!(files.verify(&signed(export(10))), Ok(OK));
}

/// Records after the last checkpoint are not proven: refused, named, unless accepted.
#[test]
fn an_unsigned_tail_is_named_and_accepted_only_on_request() {
    let files = Files::new();
    let lines = export(10);
    let last = *checkpoints(&lines).last().expect("checkpoint");
    assert!(last + 1 < lines.len(), "the export has a tail");
    let f = failure(files.verify(&lines));
    assert_eq!(f.code, 1);
    let tail = format!("records seq {}..{} come after", last + 1, lines.len() - 1);
    assert!(
        f.message.starts_with("NOT PROVEN: ") && f.message.contains(&tail),
        "{}",
        f.message
    );
    assert!(f.message.contains("--allow-unsigned-tail"), "{}", f.message);
    assert_eq!(files.verify_with(&lines, None, true), Ok(OK));
}

/// A chain nobody signed (fabricated, or its checkpoints stripped and re-hashed) is not
/// proven, however consistent its hashes.
#[test]
fn a_trail_without_signatures_is_not_proven() {
    let files = Files::new();
    let lines = export_every(9, 1000);
    assert!(checkpoints(&lines).is_empty());
    for allow in [false, true] {
        let f = failure(files.verify_with(&lines, None, allow));
        assert!(
            f.message.starts_with(
                "NOT PROVEN: no checkpoint signed by this key covers any of the 9 records"
            ),
            "{}",
            f.message
        );
    }
}

#[test]
fn ok_summary_text() {
    let s = Summary {
        records: 12,
        first_seq: 0,
        last_seq: 11,
        head: Digest::GENESIS,
        checkpoints: 2,
        signed_through: Some(9),
        unsigned_tail: 2,
    };
    let text = ok_text(&s, false);
    assert!(
        text.starts_with("ok: 12 records, 2 checkpoints, signed through seq 9\n"),
        "{text}"
    );
    // seq 10 is the checkpoint over seq 9; only seq 11 is unsigned.
    assert!(text.contains("note: 1 record comes after"), "{text}");
    let fresh = Summary {
        last_seq: 10,
        records: 11,
        unsigned_tail: 1,
        ..s.clone()
    };
    assert_eq!(
        ok_text(&fresh, false),
        "ok: 11 records, 2 checkpoints, signed through seq 9"
    );
    let unsigned = Summary {
        checkpoints: 0,
        signed_through: None,
        unsigned_tail: 12,
        ..s.clone()
    };
    assert!(
        ok_text(&unsigned, false).contains("no signed checkpoint\n  note: the last 12 records"),
        "{}",
        ok_text(&unsigned, false)
    );
    let range = Summary {
        first_seq: 5,
        unsigned_tail: 0,
        ..s
    };
    let text = ok_text(&range, true);
    assert!(text.starts_with("ok: range seq 5..11 "), "{text}");
    assert!(text.ends_with("signed through seq 9"), "{text}");
}

/// A range that starts mid-chain is proven only from a checkpoint the auditor names.
#[test]
fn a_range_is_proven_from_the_checkpoint_the_auditor_names() {
    let files = Files::new();
    let lines = signed(export(14));
    let from = checkpoints(&lines)[0];
    let f = failure(files.verify(&lines[from + 1..]));
    assert!(
        f.message.starts_with(&format!(
            "NOT PROVEN: the export starts at seq {} (mid-chain)",
            from + 1
        )),
        "{}",
        f.message
    );
    let f = failure(files.verify(&lines[from..]));
    assert!(f.message.contains("--from-checkpoint SEQ"), "{}", f.message);
    assert_eq!(
        files.verify_with(&lines[from..], Some(from as u64), false),
        Ok(OK)
    );
    let f = failure(files.verify_with(&lines[from..], Some(from as u64 + 1), false));
    assert!(
        f.message.contains("but the export starts at seq"),
        "{}",
        f.message
    );
    let f = failure(files.verify_with(&lines[from + 1..], Some(from as u64 + 1), false));
    assert!(f.message.contains("not a checkpoint"), "{}", f.message);
}

#[test]
fn edited_record_is_named() {
    let files = Files::new();
    let mut lines = export(10);
    lines[3] = lines[3].replace("host-1", "host-9");
    let f = failure(files.verify(&lines));
    assert_eq!(f.code, 1);
    assert!(
        f.message
            .starts_with("TAMPERED: record seq 3 (line 4): hash mismatch"),
        "{}",
        f.message
    );
}

#[test]
fn removed_record_and_filtered_export() {
    let files = Files::new();
    let mut lines = export(10);
    lines.remove(2);
    let f = failure(files.verify(&lines));
    assert!(
        f.message.starts_with("TAMPERED: record seq 3 (line 3)"),
        "{}",
        f.message
    );
    assert!(
        f.message.contains("records 2..2 are missing"),
        "{}",
        f.message
    );
    assert!(f.message.contains("filtered"), "{}", f.message);
}

#[test]
fn garbage_mid_file_is_tampering() {
    let files = Files::new();
    let mut lines = export(10);
    lines[4] = "{not json".to_owned();
    let f = failure(files.verify(&lines));
    assert!(
        f.message
            .starts_with("TAMPERED: record seq 4 (line 5): not a valid audit record"),
        "{}",
        f.message
    );
}

#[test]
fn swapped_records() {
    let files = Files::new();
    let mut lines = export(10);
    lines.swap(6, 7);
    let f = failure(files.verify(&lines));
    assert!(
        f.message.starts_with("TAMPERED: record seq"),
        "{}",
        f.message
    );
}

#[test]
fn wrong_key_is_not_called_tampering() {
    let files = Files::new();
    let other = hex(SigningKey::from_bytes(&[8; 32]).verifying_key().as_bytes());
    std::fs::write(files.dir.path().join("key.pub"), other).expect("key");
    let f = failure(files.verify(&export(10)));
    assert!(f.message.starts_with("NOT VERIFIED"), "{}", f.message);
    assert!(f.message.contains("--key"), "{}", f.message);
}

#[test]
fn csv_is_not_verifiable() {
    let files = Files::new();
    let f = failure(files.verify(&["seq,time,kind".to_owned(), "0,x,y".to_owned()]));
    assert!(f.message.starts_with("NOT VERIFIED: "), "{}", f.message);
    assert!(f.message.contains("line 1"), "{}", f.message);
    assert!(f.message.contains("--format jsonl"), "{}", f.message);
}

#[test]
fn empty_and_missing_inputs() {
    let files = Files::new();
    let empty = files.dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").expect("write");
    let f = failure(run(&files.args(empty)));
    assert!(f.message.ends_with("no audit records"), "{}", f.message);
    let f = failure(run(&files.args(files.dir.path().join("missing.jsonl"))));
    assert_eq!(f.code, 2);
    let f = failure(run(&VerifyArgs {
        key: files.dir.path().join("no-key.pub"),
        ..files.args(files.dir.path().join("missing.jsonl"))
    }));
    assert_eq!(f.code, 2);
    assert!(f.message.contains("--key"), "{}", f.message);
}

#[test]
fn keys() {
    let key = hex(signing_key().verifying_key().as_bytes());
    assert!(parse_key(&format!("  {}\n", key.to_uppercase())).is_some());
    assert!(parse_key("abc").is_none());
    assert!(parse_key(&"zz".repeat(32)).is_none());
}

/// The checkpoint lines of an export: what the server published as it signed them.
fn published_of(lines: &[String]) -> Vec<String> {
    checkpoints(lines)
        .into_iter()
        .map(|i| lines[i].clone())
        .collect()
}

#[test]
fn an_export_with_its_published_checkpoints_verifies() {
    let files = Files::new();
    let lines = signed(export(10));
    assert_eq!(
        files.verify_published(&lines, &published_of(&lines)),
        Ok(OK)
    );
}

/// Whoever holds the database and the key can rewrite the trail and sign it again: the
/// signatures verify, the checkpoints published before do not match.
#[test]
fn a_trail_rewritten_and_signed_again_differs_from_its_published_checkpoints() {
    let files = Files::new();
    let original = signed(export(10));
    let rewritten = signed(export_from_hosts(10, 4, |i| {
        if i == 2 {
            "not-what-happened".to_owned()
        } else {
            format!("host-{}", i % 2)
        }
    }));
    assert_eq!(
        files.verify(&rewritten),
        Ok(OK),
        "signed again: valid alone"
    );
    let f = failure(files.verify_published(&rewritten, &published_of(&original)));
    assert!(
        f.message
            .starts_with("TAMPERED: record seq 4 is not the checkpoint the server published"),
        "{}",
        f.message
    );
}

/// Cutting the newest records off at an earlier checkpoint leaves a valid signed trail; a
/// checkpoint published after its end shows the cut.
#[test]
fn a_trail_cut_after_a_published_checkpoint_is_caught() {
    let files = Files::new();
    let whole = signed(export(20));
    let marks = checkpoints(&whole);
    let cut: Vec<String> = whole[..=marks[1]].to_vec();
    assert_eq!(
        files.verify(&cut),
        Ok(OK),
        "cut at a checkpoint: valid alone"
    );
    let f = failure(files.verify_published(&cut, &published_of(&whole)));
    assert!(
        f.message.starts_with(&format!(
            "TAMPERED: the server published a checkpoint at seq {}",
            marks[2]
        )) && f
            .message
            .contains(&format!("last record (seq {})", marks[1])),
        "{}",
        f.message
    );
}

#[test]
fn a_published_file_without_checkpoints_in_range_proves_nothing() {
    let files = Files::new();
    let lines = signed(export(10));
    let f = failure(files.verify_published(&lines, &[]));
    assert!(
        f.message
            .starts_with("NOT PROVEN: none of the 0 published checkpoints"),
        "{}",
        f.message
    );
    let f = failure(files.verify_published(&lines, &[lines[0].clone()]));
    assert_eq!(f.code, 2, "{}", f.message);
    assert!(f.message.contains("not a checkpoint"), "{}", f.message);
}
