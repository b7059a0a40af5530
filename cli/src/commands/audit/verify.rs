//! `countersign audit verify FILE [--key FILE]`: offline check of a JSON Lines export with
//! the server's public key — every hash, every link, every checkpoint signature.
//!
//! A time-range export (`--since`) starts mid-chain: its first record's `prev` cannot be
//! checked from the file, so it is trusted as the anchor and the summary says so. An export
//! filtered by host, agent, rule or person skips records in the middle: that cannot be told
//! apart from removal, and the message says both.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use countersign_audit::verify::MAX_LINE;
use countersign_audit::{verify_with, Anchor, Digest, Record, Summary, Verifier, VerifyError};
use countersign_audit::{CheckpointError, VerifyingKey};

use crate::exit::{Failure, Outcome, OK};
use crate::output::outln;

/// Where the server writes its public key.
pub const DEFAULT_KEY: &str = "/var/lib/countersign-server/audit-key.pub";

/// `audit verify` arguments.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// JSON Lines export (`audit export --format jsonl`).
    pub file: PathBuf,
    /// The server's audit public key (64 hex digits).
    #[arg(long, value_name = "FILE", default_value = DEFAULT_KEY)]
    pub key: PathBuf,
}

/// Runs `audit verify`.
pub fn run(args: &VerifyArgs) -> Outcome {
    let key = read_key(&args.key)?;
    let open = || {
        File::open(&args.file)
            .map(BufReader::new)
            .map_err(|e| Failure::usage(format!("{}: {e}", args.file.display())))
    };
    let anchor = first_anchor(open()?);
    let verifier = match anchor {
        Some(anchor) => Verifier::resume(key, anchor),
        None => Verifier::new(key),
    };
    match verify_with(open()?, verifier) {
        Ok(summary) => {
            outln!("{}", ok_text(&summary, anchor.is_some()));
            Ok(OK)
        }
        Err(e) => Err(Failure::refused(failure_text(&e, &args.file))),
    }
}

/// Reads a public key file: 64 hex digits (case and surrounding blanks ignored).
pub fn read_key(path: &Path) -> Result<VerifyingKey, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Failure::usage(format!(
            "{}: {e} (the server's audit-key.pub; pass --key FILE)",
            path.display()
        ))
    })?;
    parse_key(&text).ok_or_else(|| {
        Failure::usage(format!(
            "{}: not an audit public key (expected 64 hex digits of an Ed25519 key)",
            path.display()
        ))
    })
}

fn parse_key(text: &str) -> Option<VerifyingKey> {
    let digest = Digest::from_hex(&text.trim().to_ascii_lowercase())?;
    VerifyingKey::from_bytes(&digest.0).ok()
}

/// The anchor of an export that starts after seq 0: its first record's seq and `prev`.
/// None for a whole chain, and for anything unreadable (the verifier then reports it).
fn first_anchor<R: BufRead>(reader: R) -> Option<Anchor> {
    let mut line = Vec::new();
    reader
        .take(MAX_LINE as u64 + 2)
        .read_until(b'\n', &mut line)
        .ok()?;
    let record: Record = serde_json::from_slice(&line).ok()?;
    (record.seq > 0).then_some(Anchor {
        next_seq: record.seq,
        prev: record.prev,
    })
}

/// `1 record`, `2 records`.
fn count(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// The success line, and a note when records follow the last signature.
pub fn ok_text(s: &Summary, anchored: bool) -> String {
    let mut text = String::from("ok: ");
    if anchored {
        text.push_str(&format!(
            "range seq {}..{} (starts mid-chain: the link of seq {} to the record before it \
             is trusted, not checked), ",
            s.first_seq, s.last_seq, s.first_seq
        ));
    }
    text.push_str(&format!(
        "{}, {}, ",
        count(s.records, "record"),
        count(s.checkpoints, "checkpoint")
    ));
    // The checkpoint record itself follows the head it signs: it does not count as unsigned.
    let unsigned = match s.signed_through {
        Some(seq) => {
            text.push_str(&format!("signed through seq {seq}"));
            s.unsigned_tail.saturating_sub(1)
        }
        None => {
            text.push_str("no signed checkpoint");
            s.unsigned_tail
        }
    };
    if unsigned > 0 {
        text.push_str(&format!(
            "\n  note: {} after the last signed checkpoint: a cut there would not show",
            if unsigned == 1 {
                "1 record comes".to_owned()
            } else {
                format!("the last {unsigned} records come")
            }
        ));
    }
    text
}

const FILTERED_HINT: &str = "if this export was filtered by --host/--agent/--session/--rule/\
     --person/--decision, it skips records by design and cannot be verified as a chain: \
     verify an unfiltered or time-range (--since/--until) export";

/// The failure message: `TAMPERED: record seq N (line L): what`, or why nothing could be
/// checked.
pub fn failure_text(e: &VerifyError, file: &Path) -> String {
    let at = |seq: u64, line: u64| format!("TAMPERED: record seq {seq} (line {line})");
    match e {
        VerifyError::SeqMismatch {
            line,
            expected,
            found,
        } => {
            let what = if found > expected {
                format!(
                    "seq {expected} was expected: records {expected}..{} are missing or \
                     reordered\n  {FILTERED_HINT}",
                    found - 1
                )
            } else {
                format!("seq {expected} was expected: records duplicated or reordered")
            };
            format!("{}: {what}", at(*found, *line))
        }
        VerifyError::HashMismatch { line, seq } => {
            format!("{}: hash mismatch: the record was edited", at(*seq, *line))
        }
        VerifyError::PrevMismatch { line, seq } => format!(
            "{}: prev does not match the hash of the record before (a record was removed, \
             replaced or re-hashed)",
            at(*seq, *line)
        ),
        VerifyError::InvalidCheckpoint { line, seq, reason } => {
            format!("{}: invalid checkpoint: {reason}", at(*seq, *line))
        }
        VerifyError::Signature {
            line,
            seq,
            source: source @ CheckpointError::WrongKey { .. },
        } => format!(
            "NOT VERIFIED: record seq {seq} (line {line}): checkpoint {source}: is --key the \
             public key of the server that wrote this trail?"
        ),
        VerifyError::Signature { line, seq, source } => {
            format!("{}: checkpoint signature: {source}", at(*seq, *line))
        }
        VerifyError::Diverged { line, seq } => {
            format!("{}: differs from the signed checkpoint", at(*seq, *line))
        }
        // Nothing readable at all: most likely a CSV or OCSF export, not tampering.
        VerifyError::Malformed {
            line: 1, message, ..
        } => format!(
            "NOT VERIFIED: {}: line 1 is not an audit record ({message}); only JSON Lines \
             exports can be verified: `countersign audit export --format jsonl`",
            file.display()
        ),
        VerifyError::Malformed {
            line,
            expected_seq,
            message,
        } => format!(
            "{}: not a valid audit record: {message}",
            at(*expected_seq, *line)
        ),
        VerifyError::LineTooLong {
            line,
            expected_seq,
            limit,
        } => format!("{}: longer than {limit} bytes", at(*expected_seq, *line)),
        VerifyError::Io { line, source } => {
            format!("{}: line {line}: {source}", file.display())
        }
        VerifyError::Empty => format!("{}: no audit records", file.display()),
        other => format!("TAMPERED: {other}"),
    }
}

#[cfg(test)]
mod tests;
