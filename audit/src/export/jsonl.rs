//! JSON Lines: one record per line, in its canonical form, `hash` included — the format
//! `verify` reads back.

use std::io::Write;

use super::ExportError;
use crate::canonical::line_bytes;
use crate::filter::Filter;
use crate::record::Record;

/// One record as one line (without the trailing `\n`).
pub fn to_line(record: &Record) -> Result<String, ExportError> {
    let bytes = line_bytes(record)?;
    // The canonical writer only emits UTF-8 (it copies `&str`s and ASCII punctuation).
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Writes the selected records, one per line; returns how many.
pub fn write<'a, W: Write>(
    records: impl IntoIterator<Item = &'a Record>,
    filter: &Filter,
    out: W,
) -> Result<u64, ExportError> {
    super::write_lines(records, filter, out, |r| Ok(line_bytes(r)?))
}
