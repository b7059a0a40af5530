//! `countersign audit verify FILE [--key FILE] [--from-checkpoint SEQ] [--allow-unsigned-tail]`:
//! offline check of a JSON Lines export with the server's public key — every hash, every
//! link, every checkpoint signature — answering the auditor's question: did the holder of
//! this key sign all of this? Exit 0 only when every record is covered by a checkpoint the key
//! signed and the chain starts at its genesis, or at the signed checkpoint the auditor names
//! (`--from-checkpoint`: a time-range export that starts there). Anything less exits 1 and says
//! what is not proven: records after the last checkpoint (accepted, named, with
//! `--allow-unsigned-tail`), an export that starts mid-chain elsewhere, no signature at all.
//! An export filtered by host, agent, rule or person skips records in the middle: that cannot
//! be told apart from removal, and the message says both. `--published` also compares the
//! export with the checkpoints the server published outside its database (`published`).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use countersign_audit::verify::MAX_LINE;
use countersign_audit::{
    verify_with, Anchor, Digest, Kind, Record, Summary, Verifier, VerifyError,
};
use countersign_audit::{CheckpointError, VerifyingKey};

use crate::exit::{Failure, Outcome, OK};
use crate::output::outln;

mod published;
use published::Published;

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
    /// The export starts at this checkpoint (a time-range export): its signature anchors
    /// the records after it. Without it, the export must start at the genesis (seq 0).
    #[arg(long, value_name = "SEQ")]
    pub from_checkpoint: Option<u64>,
    /// Accept records after the last signed checkpoint (named in the output): whoever can
    /// write the store could have made or removed them.
    #[arg(long)]
    pub allow_unsigned_tail: bool,
    /// Checkpoints the server published outside its database as it signed them (its
    /// `--checkpoint-log`, default /var/lib/countersign-server/audit-checkpoints.jsonl, best a
    /// copy kept off its host): each one in the export's range must be there unchanged, and
    /// none may come after its end. Proves the trail was not rewritten or cut since, even by
    /// a holder of the key.
    #[arg(long, value_name = "FILE")]
    pub published: Option<PathBuf>,
}

/// Runs `audit verify`.
pub fn run(args: &VerifyArgs) -> Outcome {
    let key = read_key(&args.key)?;
    let open = || {
        File::open(&args.file)
            .map(BufReader::new)
            .map_err(|e| Failure::usage(format!("{}: {e}", args.file.display())))
    };
    let first = first_record(open()?);
    let anchor = first.as_ref().filter(|r| r.seq > 0).map(|r| Anchor {
        next_seq: r.seq,
        prev: r.prev,
    });
    if let Some(problem) = start_problem(first.as_ref(), args.from_checkpoint) {
        return Err(Failure::refused(format!("NOT PROVEN: {problem}")));
    }
    let verifier = match anchor {
        Some(anchor) => Verifier::resume(key, anchor),
        None => Verifier::new(key),
    };
    let published = match &args.published {
        Some(path) => {
            let file =
                File::open(path).map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
            Some(
                Published::read(BufReader::new(file), &path.display().to_string())
                    .map_err(Failure::usage)?,
            )
        }
        None => None,
    };
    match verify_with(open()?, verifier) {
        Ok(summary) => match unproven(&summary, args.allow_unsigned_tail) {
            None => {
                let mut text = ok_text(&summary, anchor.is_some());
                if let Some(published) = &published {
                    let note = published
                        .compare(open()?, &summary)
                        .map_err(Failure::refused)?;
                    text.push_str(&format!("\n  {note}"));
                }
                outln!("{text}");
                Ok(OK)
            }
            Some(problem) => Err(Failure::refused(format!(
                "NOT PROVEN: {problem}\n  (every hash and link checked: {})",
                ok_text(&summary, anchor.is_some()).trim_start_matches("ok: ")
            ))),
        },
        Err(e) => Err(Failure::refused(failure_text(&e, &args.file))),
    }
}

/// Why the export's start is not proven: it must be the genesis, or the checkpoint the
/// auditor named. None when it is (or when the file is unreadable: the verifier says so).
fn start_problem(first: Option<&Record>, from_checkpoint: Option<u64>) -> Option<String> {
    let first = first?;
    match from_checkpoint {
        None if first.seq > 0 => Some(format!(
            "the export starts at seq {} (mid-chain): nothing in it links that record to the \
             start of the trail. Export the whole trail, or start the range at a checkpoint \
             and name it: --from-checkpoint SEQ",
            first.seq
        )),
        None => None,
        Some(seq) if first.seq != seq => Some(format!(
            "--from-checkpoint {seq}, but the export starts at seq {}",
            first.seq
        )),
        Some(seq) if first.kind != Kind::Checkpoint => Some(format!(
            "--from-checkpoint {seq}, but record seq {seq} is a {}, not a checkpoint",
            first.kind.as_str()
        )),
        Some(_) => None,
    }
}

/// What a verified chain leaves unproven: records no signature covers.
pub fn unproven(s: &Summary, allow_unsigned_tail: bool) -> Option<String> {
    let Some(signed) = s.signed_through else {
        return Some(format!(
            "no checkpoint signed by this key covers any of the {}: whoever can write the \
             store could have made them",
            count(s.records, "record")
        ));
    };
    let unsigned = unsigned(s);
    (unsigned > 0 && !allow_unsigned_tail).then(|| {
        format!(
            "records seq {}..{} come after the last signed checkpoint (signed through seq \
             {signed}): whoever can write the store could have made them, or cut records off \
             after them. Export again (an export ends with a fresh checkpoint), or accept them \
             as unsigned: --allow-unsigned-tail",
            s.last_seq + 1 - unsigned,
            s.last_seq
        )
    })
}

/// Records after the last signed checkpoint (all of them when none is signed). The
/// checkpoint record itself follows the head it signs: it does not count as unsigned.
fn unsigned(s: &Summary) -> u64 {
    match s.signed_through {
        Some(_) => s.unsigned_tail.saturating_sub(1),
        None => s.unsigned_tail,
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

/// The export's first record; None for anything unreadable (the verifier then reports it).
fn first_record<R: BufRead>(reader: R) -> Option<Record> {
    let mut line = Vec::new();
    reader
        .take(MAX_LINE as u64 + 2)
        .read_until(b'\n', &mut line)
        .ok()?;
    serde_json::from_slice(&line).ok()
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
            "range seq {}..{} from the checkpoint at seq {} (its signature covers the trail \
             before it), ",
            s.first_seq, s.last_seq, s.first_seq
        ));
    }
    text.push_str(&format!(
        "{}, {}, ",
        count(s.records, "record"),
        count(s.checkpoints, "checkpoint")
    ));
    match s.signed_through {
        Some(seq) => text.push_str(&format!("signed through seq {seq}")),
        None => text.push_str("no signed checkpoint"),
    }
    let unsigned = unsigned(s);
    if unsigned > 0 {
        text.push_str(&format!(
            "\n  note: {} after the last signed checkpoint, accepted unsigned \
             (--allow-unsigned-tail): a cut there would not show",
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
