//! A valid chain verifies; every kind of tampering is caught and named.

use serde_json::{json, Value};

use super::*;
use crate::canonical::record_hash;
use crate::checkpoint::CheckpointError;

const K: usize = 38; // an exec attempt in the middle: entry 35, after 3 checkpoints (interval 10)

fn parse(line: &str) -> Value {
    serde_json::from_str(line).expect("valid line")
}

fn reseal(mut record: Record) -> Record {
    record.hash = record_hash(&record).expect("hash");
    record
}

/// Re-links and re-hashes every record from `from` on, as an attacker rewriting history would.
fn rewrite_from(records: &mut [Record], from: usize) {
    for i in from..records.len() {
        if i > 0 {
            records[i].prev = records[i - 1].hash;
        }
        if let Some(cp) = &mut records[i].checkpoint {
            cp.head = records[i].prev; // keeps the old signature: the attacker has no key
        }
        records[i] = reseal(records[i].clone());
    }
}

#[test]
fn a_thousand_records_verify() {
    let chain = chain(1000, 100);
    let lines = lines(chain.records());
    assert_eq!(lines.len(), 1010);
    let s = verify_lines(&lines).expect("valid chain");
    assert_eq!(s.records, 1010);
    assert_eq!((s.first_seq, s.last_seq), (0, 1009));
    assert_eq!(s.checkpoints, 10);
    assert_eq!(s.signed_through, Some(1008));
    assert_eq!(s.unsigned_tail, 1);
    assert_eq!(s.head, chain.state().head());
    // The export is the canonical form: parse + re-export gives the same bytes.
    for line in &lines {
        let r: Record = serde_json::from_str(line).expect("parse");
        assert_eq!(&jsonl::to_line(&r).expect("line"), line);
    }
}

#[test]
fn editing_any_field_names_that_record() {
    let lines = lines(chain(100, 10).records());
    let original = parse(&lines[K]);
    assert_eq!(original["kind"], "attempt");
    let edits: [(&str, Value); 16] = [
        ("/seq", json!(K as u64 + 1000)),
        ("/time", json!("2026-11-23T14:00:00.001Z")),
        ("/kind", json!("request")),
        ("/actor/kind", json!("person")),
        ("/actor/id", json!("someone-else")),
        ("/actor/channel", json!("api")),
        ("/subject/host", json!("build-99")),
        ("/subject/rule", json!("other-rule")),
        ("/subject/decision", json!("allowed")),
        ("/subject/argv/1", json!("get")),
        ("/subject/fingerprint", json!("0000000000000000")),
        ("/subject/details/pid", json!(1)),
        ("/subject/details/i", json!(0)),
        ("/prev", json!("1".repeat(64))),
        ("/hash", json!("2".repeat(64))),
        ("/subject/session", json!("s-1")),
    ];
    for (path, value) in edits {
        let mut v = original.clone();
        *v.pointer_mut(path).expect(path) = value;
        let mut tampered = lines.clone();
        tampered[K] = v.to_string();
        let err = verify_lines(&tampered).expect_err(path);
        assert_eq!(err.line(), Some(K as u64 + 1), "{path}: {err}");
        match path {
            "/seq" => assert!(
                matches!(err, VerifyError::SeqMismatch { expected, .. } if expected == K as u64)
            ),
            _ => assert!(
                matches!(err, VerifyError::HashMismatch { seq, .. } if seq == K as u64),
                "{path}: {err}"
            ),
        }
    }
}

#[test]
fn adding_or_removing_a_field_is_caught() {
    let lines = lines(chain(100, 10).records());
    let mut v = parse(&lines[K]);
    v["subject"]
        .as_object_mut()
        .expect("subject")
        .remove("rule");
    let mut removed = lines.clone();
    removed[K] = v.to_string();
    let err = verify_lines(&removed).expect_err("field removed");
    assert!(
        matches!(err, VerifyError::HashMismatch { seq, .. } if seq == K as u64),
        "{err}"
    );

    let mut v = parse(&lines[K]);
    v["subject"]["grant_id"] = json!("g-forged");
    let mut added = lines.clone();
    added[K] = v.to_string();
    assert_eq!(
        verify_lines(&added).expect_err("field added").seq(),
        Some(K as u64)
    );
}

#[test]
fn edit_with_rehash_is_caught_by_the_next_link_or_checkpoint() {
    let chain = chain(100, 10);
    let mut records = chain.records().to_vec();
    records[K].subject.argv = Some(vec!["kubectl".into(), "get".into()]);
    records[K] = reseal(records[K].clone());
    let err = verify_lines(&lines(&records)).expect_err("rehash");
    assert!(
        matches!(err, VerifyError::PrevMismatch { seq, .. } if seq == K as u64 + 1),
        "{err}"
    );

    // Rewriting the whole rest of the chain: the next checkpoint's signature fails.
    rewrite_from(&mut records, K);
    let err = verify_lines(&lines(&records)).expect_err("rewrite");
    let next_cp = records[K..]
        .iter()
        .find(|r| r.kind == Kind::Checkpoint)
        .expect("checkpoint");
    assert!(
        matches!(&err, VerifyError::Signature { seq, source: CheckpointError::BadSignature, .. } if *seq == next_cp.seq),
        "{err}"
    );
}

#[test]
fn deleting_duplicating_or_swapping_is_caught() {
    let exported = lines(chain(100, 10).records());
    let mut deleted = exported.clone();
    deleted.remove(K);
    let err = verify_lines(&deleted).expect_err("deleted");
    assert!(
        matches!(err, VerifyError::SeqMismatch { line, expected, found } if line == K as u64 + 1 && expected == K as u64 && found == K as u64 + 1),
        "{err}"
    );

    let mut swapped = exported.clone();
    swapped.swap(K, K + 1);
    let err = verify_lines(&swapped).expect_err("swapped");
    assert!(
        matches!(err, VerifyError::SeqMismatch { expected, .. } if expected == K as u64),
        "{err}"
    );

    let mut duplicated = exported.clone();
    duplicated.insert(K, exported[K - 1].clone());
    let err = verify_lines(&duplicated).expect_err("duplicated");
    assert!(
        matches!(err, VerifyError::SeqMismatch { found, .. } if found == K as u64 - 1),
        "{err}"
    );

    // Renumbering after a deletion does not help: the hash covers seq.
    let mut records = chain(100, 10).records().to_vec();
    records.remove(K);
    for r in &mut records[K..] {
        r.seq -= 1;
    }
    let err = verify_lines(&lines(&records)).expect_err("renumbered");
    assert_eq!(err.seq(), Some(K as u64), "{err}");
}
