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
    let interval = NonZeroU64::new(4).expect("nonzero");
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
                host: Some(format!("host-{}", i % 2)),
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
        let file = self.dir.path().join("trail.jsonl");
        std::fs::write(&file, lines.join("\n") + "\n").expect("write");
        run(&VerifyArgs {
            file,
            key: self.dir.path().join("key.pub"),
        })
    }
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
    assert_eq!(files.verify(&export(10)), Ok(OK));
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

#[test]
fn time_range_export_verifies_from_its_first_record() {
    let files = Files::new();
    let lines = export(10);
    assert_eq!(files.verify(&lines[5..]), Ok(OK));
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
    let f = failure(run(&VerifyArgs {
        file: empty,
        key: files.dir.path().join("key.pub"),
    }));
    assert!(f.message.ends_with("no audit records"), "{}", f.message);
    let f = failure(run(&VerifyArgs {
        file: files.dir.path().join("missing.jsonl"),
        key: files.dir.path().join("key.pub"),
    }));
    assert_eq!(f.code, 2);
    let f = failure(run(&VerifyArgs {
        file: files.dir.path().join("missing.jsonl"),
        key: files.dir.path().join("no-key.pub"),
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
