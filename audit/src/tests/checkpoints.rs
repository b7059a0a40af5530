//! Checkpoints: truncation against a signed head, forged signatures.

use super::*;
use crate::canonical::record_hash;
use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::verify::Verifier;

fn reseal(mut record: Record) -> Record {
    record.hash = record_hash(&record).expect("hash");
    record
}

#[test]
fn truncated_tail_is_only_caught_against_a_signed_checkpoint() {
    let chain = chain(1000, 100);
    let all = lines(chain.records());
    let cut = &all[..all.len() - 5];
    // Alone, a cut tail looks like a shorter chain: verify reports how far it is signed.
    let s = verify_lines(cut).expect("a prefix is a valid chain");
    assert_eq!(
        (s.last_seq, s.signed_through, s.unsigned_tail),
        (1004, Some(907), 97)
    );

    // Against the latest checkpoint (held out of band), the cut is an error.
    let latest = chain
        .records()
        .last()
        .and_then(|r| r.checkpoint.clone())
        .expect("checkpoint");
    let verifier = Verifier::new(key().verifying_key())
        .expect_checkpoint(latest.clone())
        .expect("valid");
    let text: String = cut.iter().map(|l| format!("{l}\n")).collect();
    let err = verify_with(text.as_bytes(), verifier).expect_err("truncated");
    assert!(
        matches!(
            err,
            VerifyError::Truncated {
                expected_seq: 1008,
                last_seq: Some(1004)
            }
        ),
        "{err}"
    );

    let verifier = Verifier::new(key().verifying_key())
        .expect_checkpoint(latest)
        .expect("valid");
    let full: String = all.iter().map(|l| format!("{l}\r\n")).collect();
    assert_eq!(
        verify_with(full.as_bytes(), verifier)
            .expect("complete")
            .last_seq,
        1009
    );
}

#[test]
fn forged_checkpoints_are_caught() {
    let chain = chain(100, 10);
    let mut records = chain.records().to_vec();
    let last = records.len() - 1;
    let cp = records[last]
        .checkpoint
        .clone()
        .expect("last is a checkpoint");

    // Signed by another key but claiming the server's key id.
    let attacker = SigningKey::from_bytes(&[7; 32]);
    let mut forged = Checkpoint::sign(&attacker, cp.head_seq, cp.head);
    forged.key_id = cp.key_id.clone();
    records[last].checkpoint = Some(forged);
    records[last] = reseal(records[last].clone());
    let err = verify_lines(&lines(&records)).expect_err("forged");
    assert!(
        matches!(&err, VerifyError::Signature { seq, source: CheckpointError::BadSignature, .. } if *seq == last as u64),
        "{err}"
    );

    // Signed by another key, honestly labelled.
    records[last].checkpoint = Some(Checkpoint::sign(&attacker, cp.head_seq, cp.head));
    records[last] = reseal(records[last].clone());
    let err = verify_lines(&lines(&records)).expect_err("other key");
    assert!(
        matches!(
            &err,
            VerifyError::Signature {
                source: CheckpointError::WrongKey { .. },
                ..
            }
        ),
        "{err}"
    );

    // A genuine signature moved onto another head.
    let mut moved = cp.clone();
    moved.head_seq -= 1;
    records[last].checkpoint = Some(moved);
    records[last] = reseal(records[last].clone());
    let err = verify_lines(&lines(&records)).expect_err("moved");
    assert!(
        matches!(err, VerifyError::InvalidCheckpoint { .. }),
        "{err}"
    );

    // An out-of-band checkpoint that is itself forged is refused up front.
    let bogus = Checkpoint {
        signature: "00".repeat(64),
        ..cp
    };
    let refused = Verifier::new(key().verifying_key()).expect_checkpoint(bogus);
    assert!(matches!(refused, Err(VerifyError::ExpectedCheckpoint(_))));
}
