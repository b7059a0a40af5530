//! Verifying a JSON Lines export: every hash, every link, every checkpoint signature.
//!
//! What it detects: an edited record (its hash no longer matches), a removed, duplicated or
//! reordered record (sequence numbers and `prev` links), a record edited *and* re-hashed
//! (the next record's `prev`, or failing that, the next checkpoint's signature), a forged
//! checkpoint. What it cannot detect alone: records cut off the end after the last
//! checkpoint — the rest of the file is still a valid chain. [`Summary::signed_through`]
//! says how far the signatures vouch; an auditor holding a newer signed checkpoint (e.g.
//! fetched separately from the server) passes it to [`Verifier::expect_checkpoint`], and
//! then truncation before it is an error too.

mod error;
mod lines;

use std::io::BufRead;

use ed25519_dalek::VerifyingKey;

pub use error::VerifyError;
pub use lines::MAX_LINE;

use super::canonical::record_hash;
use super::checkpoint::Checkpoint;
use super::digest::Digest;
use super::record::{Kind, Record};
use lines::{next_line, Line};

/// What a successful verification established.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Number of records (checkpoints included).
    pub records: u64,
    /// Sequence number of the first record (0 unless resumed from an [`Anchor`]).
    pub first_seq: u64,
    /// Sequence number of the last record.
    pub last_seq: u64,
    /// Hash of the last record.
    pub head: Digest,
    /// Number of checkpoints whose signature verified.
    pub checkpoints: u64,
    /// Last sequence number covered by a verified signature; None when there is no
    /// checkpoint. Records after it could have been cut off without trace.
    pub signed_through: Option<u64>,
    /// Number of records after `signed_through` (all of them when it is None).
    pub unsigned_tail: u64,
}

/// Where a verification starts when the export is a later range of the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Anchor {
    /// Sequence number of the first record expected.
    pub next_seq: u64,
    /// Hash of the record before it (trusted: e.g. from an earlier verified export).
    pub prev: Digest,
}

/// Incremental verifier: feed records (or lines) in order, then [`Verifier::finish`].
/// The storage layer can use it directly on rows.
pub struct Verifier {
    key: VerifyingKey,
    expect: Option<Checkpoint>,
    expect_seen: bool,
    start: Anchor,
    next_seq: u64,
    prev: Digest,
    records: u64,
    checkpoints: u64,
    signed_through: Option<u64>,
}

impl Verifier {
    /// Verifies a whole chain from seq 0 (`prev` = 64 zeros), checkpoints against `key`.
    pub fn new(key: VerifyingKey) -> Self {
        let genesis = Anchor {
            next_seq: 0,
            prev: Digest::GENESIS,
        };
        Verifier::resume(key, genesis)
    }

    /// Verifies a range of the chain starting after a trusted `anchor`.
    pub fn resume(key: VerifyingKey, anchor: Anchor) -> Self {
        Verifier {
            key,
            expect: None,
            expect_seen: false,
            start: anchor,
            next_seq: anchor.next_seq,
            prev: anchor.prev,
            records: 0,
            checkpoints: 0,
            signed_through: None,
        }
    }

    /// Requires the export to contain the head `checkpoint` vouches for (obtained out of
    /// band): catches a tail cut off before it. The checkpoint's signature is checked now.
    pub fn expect_checkpoint(mut self, checkpoint: Checkpoint) -> Result<Self, VerifyError> {
        checkpoint
            .verify(&self.key)
            .map_err(VerifyError::ExpectedCheckpoint)?;
        self.expect = Some(checkpoint);
        Ok(self)
    }

    /// Parses and checks one line of a JSON Lines export (`line` numbers from 1).
    pub fn push_line(&mut self, line: u64, text: &[u8]) -> Result<(), VerifyError> {
        let malformed = |message: String| VerifyError::Malformed {
            line,
            expected_seq: self.next_seq,
            message,
        };
        if text.iter().all(u8::is_ascii_whitespace) {
            return Err(malformed("empty line".into()));
        }
        let record: Record = serde_json::from_slice(text).map_err(|e| malformed(e.to_string()))?;
        self.push_record(line, &record)
    }

    /// Checks the next record.
    pub fn push_record(&mut self, line: u64, record: &Record) -> Result<(), VerifyError> {
        let seq = record.seq;
        if seq != self.next_seq {
            return Err(VerifyError::SeqMismatch {
                line,
                expected: self.next_seq,
                found: seq,
            });
        }
        let computed =
            record_hash(record).map_err(|source| VerifyError::Encode { line, source })?;
        if computed != record.hash {
            return Err(VerifyError::HashMismatch { line, seq });
        }
        if record.prev != self.prev {
            return Err(VerifyError::PrevMismatch { line, seq });
        }
        self.check_checkpoint(line, record)?;
        if let Some(expect) = &self.expect {
            if expect.head_seq == seq {
                if expect.head != record.hash {
                    return Err(VerifyError::Diverged { line, seq });
                }
                self.expect_seen = true;
            }
        }
        self.records += 1;
        self.next_seq = seq.saturating_add(1);
        self.prev = record.hash;
        Ok(())
    }

    fn check_checkpoint(&mut self, line: u64, record: &Record) -> Result<(), VerifyError> {
        let seq = record.seq;
        let invalid = |reason: &str| VerifyError::InvalidCheckpoint {
            line,
            seq,
            reason: reason.into(),
        };
        let cp = match (record.kind, &record.checkpoint) {
            (Kind::Checkpoint, Some(cp)) => cp,
            (Kind::Checkpoint, None) => return Err(invalid("checkpoint record without payload")),
            (_, Some(_)) => return Err(invalid("checkpoint payload on a non-checkpoint record")),
            (_, None) => return Ok(()),
        };
        if seq.checked_sub(1) != Some(cp.head_seq) || cp.head != record.prev {
            return Err(invalid("does not vouch for the record just before it"));
        }
        cp.verify(&self.key)
            .map_err(|source| VerifyError::Signature { line, seq, source })?;
        self.checkpoints += 1;
        self.signed_through = Some(cp.head_seq);
        Ok(())
    }

    /// Ends verification: the summary, or an error if nothing was read or the expected
    /// checkpoint's head never appeared.
    pub fn finish(self) -> Result<Summary, VerifyError> {
        let last_seq = self.next_seq.checked_sub(1).filter(|_| self.records > 0);
        if let Some(expect) = &self.expect {
            if !self.expect_seen {
                return Err(VerifyError::Truncated {
                    expected_seq: expect.head_seq,
                    last_seq,
                });
            }
        }
        let last_seq = last_seq.ok_or(VerifyError::Empty)?;
        Ok(Summary {
            records: self.records,
            first_seq: self.start.next_seq,
            last_seq,
            head: self.prev,
            checkpoints: self.checkpoints,
            signed_through: self.signed_through,
            unsigned_tail: match self.signed_through {
                Some(signed) => last_seq - signed,
                None => self.records,
            },
        })
    }
}

/// Verifies a whole JSON Lines export from seq 0, checkpoints against `key`.
pub fn verify<R: BufRead>(reader: R, key: &VerifyingKey) -> Result<Summary, VerifyError> {
    verify_with(reader, Verifier::new(*key))
}

/// Verifies a JSON Lines export with a configured [`Verifier`].
pub fn verify_with<R: BufRead>(
    mut reader: R,
    mut verifier: Verifier,
) -> Result<Summary, VerifyError> {
    let mut line = 0u64;
    loop {
        line += 1;
        match next_line(&mut reader).map_err(|source| VerifyError::Io { line, source })? {
            Line::Text(text) => verifier.push_line(line, &text)?,
            Line::TooLong => {
                return Err(VerifyError::LineTooLong {
                    line,
                    expected_seq: verifier.next_seq,
                    limit: MAX_LINE,
                })
            }
            Line::End => return verifier.finish(),
        }
    }
}
