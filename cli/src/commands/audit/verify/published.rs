//! `audit verify --published FILE`: an export against the checkpoints the server published
//! outside its database as it signed them (`countersign-server serve --checkpoint-log`,
//! default `DATA_DIR/audit-checkpoints.jsonl`, or the "audit checkpoint signed" lines of its
//! log). A signature proves the key holder wrote the trail; only a copy kept elsewhere proves
//! the key holder did not write it *again*: whoever owns the database and the key can rewrite
//! history from any record and sign the result, or cut the newest records off. Each published
//! checkpoint inside the export's range must be there, byte for byte the same record (its hash
//! covers every record before it); one after the export's last record means records were cut.

use std::collections::BTreeMap;
use std::io::BufRead;

use countersign_audit::{Digest, Kind, Record, Summary};

/// The checkpoints of a published file, by seq.
pub struct Published(BTreeMap<u64, Record>);

impl Published {
    /// Parses a published file: JSON Lines of checkpoint records (blank lines skipped).
    pub fn read(reader: impl BufRead, name: &str) -> Result<Published, String> {
        let mut out = BTreeMap::new();
        for (i, line) in reader.lines().enumerate() {
            let line = line.map_err(|e| format!("{name}: line {}: {e}", i + 1))?;
            if line.trim().is_empty() {
                continue;
            }
            let record: Record = serde_json::from_str(&line).map_err(|e| {
                format!(
                    "{name}: line {}: not an audit checkpoint record: {e}",
                    i + 1
                )
            })?;
            if record.kind != Kind::Checkpoint {
                return Err(format!(
                    "{name}: line {}: record seq {} is a {}, not a checkpoint",
                    i + 1,
                    record.seq,
                    record.kind.as_str()
                ));
            }
            out.insert(record.seq, record);
        }
        Ok(Published(out))
    }

    /// Compares the export (already verified as a chain, summarised in `s`) with the published
    /// checkpoints: Ok with a note, or Err with what differs.
    pub fn compare(&self, export: impl BufRead, s: &Summary) -> Result<String, String> {
        let mut hashes: BTreeMap<u64, Digest> = BTreeMap::new();
        for line in export.lines().map_while(Result::ok) {
            let Ok(record) = serde_json::from_str::<Record>(&line) else {
                continue; // the chain check read every line already
            };
            if self.0.contains_key(&record.seq) {
                hashes.insert(record.seq, record.hash);
            }
        }
        let mut matched = 0;
        let mut before = 0;
        for (seq, published) in &self.0 {
            if *seq < s.first_seq {
                before += 1;
                continue;
            }
            if *seq > s.last_seq {
                return Err(format!(
                    "TAMPERED: the server published a checkpoint at seq {seq} ({}), after \
                     this export's last record (seq {}): records were cut off the trail, or \
                     the export was made before that checkpoint or ends early (--until): \
                     export the whole trail again and verify that",
                    published.time, s.last_seq
                ));
            }
            match hashes.get(seq) {
                Some(hash) if *hash == published.hash => matched += 1,
                Some(_) => {
                    return Err(format!(
                        "TAMPERED: record seq {seq} is not the checkpoint the server published \
                         at {}: the trail up to it was rewritten (and signed again) after it \
                         was published",
                        published.time
                    ))
                }
                None => {
                    return Err(format!(
                        "TAMPERED: the export has no record seq {seq}, where the server \
                         published a checkpoint at {}",
                        published.time
                    ))
                }
            }
        }
        if matched == 0 {
            return Err(format!(
                "NOT PROVEN: none of the {} published checkpoint{} falls in this export's                  range (seq {}..{}): nothing shows that it was not rewritten",
                self.0.len(),
                if self.0.len() == 1 { "" } else { "s" },
                s.first_seq,
                s.last_seq
            ));
        }
        Ok(format!(
            "published: {matched} published checkpoint{} in range, each the same record here{}",
            if matched == 1 { "" } else { "s" },
            if before > 0 {
                format!(" ({before} before the range)")
            } else {
                String::new()
            }
        ))
    }
}
