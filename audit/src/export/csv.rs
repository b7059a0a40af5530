//! CSV: one header line, then one flattened row per record (RFC 4180 quoting).
//!
//! Columns, in order ([`COLUMNS`]): the record's own fields, the actor, every subject field,
//! the destination split in four, `argv` and `details` as canonical JSON (an argument may
//! hold spaces or commas, so joining with spaces would be ambiguous), the checkpoint head
//! (not its signature: CSV is for reading, JSON Lines for verifying), `prev` and `hash`.
//! Absent values are empty cells.
//!
//! Spreadsheet safety: a cell that starts with `=`, `+`, `-`, `@`, tab or carriage return
//! gets a leading `'`, so that Excel/LibreOffice show it as text instead of evaluating it —
//! an agent controls its argv, and must not get a formula run on an auditor's machine.

use std::io::Write;

use serde_json::Value;

use super::ExportError;
use crate::canonical::to_bytes;
use crate::filter::Filter;
use crate::record::Record;

/// The header row.
pub const COLUMNS: [&str; 29] = [
    "seq",
    "time",
    "kind",
    "actor_kind",
    "actor_id",
    "actor_channel",
    "host",
    "agent",
    "session",
    "operation",
    "rule",
    "action",
    "decision",
    "request_id",
    "grant_id",
    "fingerprint",
    "binary",
    "argv",
    "dst_address",
    "dst_port",
    "dst_protocol",
    "dst_family",
    "reason",
    "details",
    "checkpoint_head_seq",
    "checkpoint_head",
    "checkpoint_key_id",
    "prev",
    "hash",
];

/// The cells of one record, in [`COLUMNS`] order, already neutralized.
pub fn row(record: &Record) -> Vec<String> {
    let s = &record.subject;
    let d = s.destination.as_ref();
    let c = record.checkpoint.as_ref();
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let cells = [
        record.seq.to_string(),
        record.time.to_string(),
        record.kind.as_str().to_string(),
        record.actor.kind.as_str().to_string(),
        record.actor.id.clone(),
        text(&record.actor.channel),
        text(&s.host),
        text(&s.agent),
        text(&s.session),
        s.operation
            .map(|o| o.as_str().to_string())
            .unwrap_or_default(),
        text(&s.rule),
        text(&s.action),
        text(&s.decision),
        text(&s.request_id),
        text(&s.grant_id),
        text(&s.fingerprint),
        text(&s.binary),
        s.argv
            .as_ref()
            .map(|a| json(a.iter().cloned().map(Value::String).collect()))
            .unwrap_or_default(),
        d.map(|d| d.address.clone()).unwrap_or_default(),
        d.map(|d| d.port.to_string()).unwrap_or_default(),
        d.map(|d| d.protocol.clone()).unwrap_or_default(),
        d.map(|d| d.family.clone()).unwrap_or_default(),
        text(&s.reason),
        if s.details.is_empty() {
            String::new()
        } else {
            json(Value::Object(s.details.clone()))
        },
        c.map(|c| c.head_seq.to_string()).unwrap_or_default(),
        c.map(|c| c.head.to_hex()).unwrap_or_default(),
        c.map(|c| c.key_id.clone()).unwrap_or_default(),
        record.prev.to_hex(),
        record.hash.to_hex(),
    ];
    cells.into_iter().map(neutralize).collect()
}

/// Writes the header and the selected records; returns how many records.
pub fn write<'a, W: Write>(
    records: impl IntoIterator<Item = &'a Record>,
    filter: &Filter,
    out: W,
) -> Result<u64, ExportError> {
    let (n, _) = write_rows(records.into_iter().filter(|r| filter.matches(r)), true, out)?;
    Ok(n)
}

/// Writes `records` (after the header, when `header`) and gives `out` back: one chunk of a
/// streamed export, whose rows are independent and whose header comes once.
pub fn write_rows<'a, W: Write>(
    records: impl IntoIterator<Item = &'a Record>,
    header: bool,
    out: W,
) -> Result<(u64, W), ExportError> {
    let mut w = ::csv::Writer::from_writer(out);
    if header {
        w.write_record(COLUMNS)?;
    }
    let mut n = 0;
    for record in records {
        w.write_record(row(record))?;
        n += 1;
    }
    let out = w
        .into_inner()
        .map_err(|e| ExportError::from(e.into_error()))?;
    Ok((n, out))
}

fn json(value: Value) -> String {
    String::from_utf8_lossy(&to_bytes(&value)).into_owned()
}

fn neutralize(cell: String) -> String {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => format!("'{cell}"),
        _ => cell,
    }
}
