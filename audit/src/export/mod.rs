//! Exports for auditors: JSON Lines (verifiable), CSV (spreadsheets), OCSF (SIEMs).
//!
//! Each writer takes the records in chain order and a [`Filter`](super::filter::Filter),
//! writes the selected ones, and returns how many it wrote.

pub mod csv;
pub mod jsonl;
pub mod ocsf;

use std::io::Write;

use thiserror::Error;

use super::{canonical::EncodeError, filter::Filter, record::Record};

/// Why an export failed.
#[derive(Debug, Error)]
pub enum ExportError {
    /// The output could not be written.
    #[error("writing the export: {0}")]
    Io(#[from] std::io::Error),
    /// The CSV writer failed.
    #[error("writing the CSV export: {0}")]
    Csv(#[from] ::csv::Error),
    /// A record could not be serialized.
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// Writes one line per selected record, `encode` giving the line's bytes; returns how many.
/// The line-per-record writers (JSON Lines, OCSF) differ only in `encode`.
fn write_lines<'a, W: Write>(
    records: impl IntoIterator<Item = &'a Record>,
    filter: &Filter,
    mut out: W,
    encode: impl Fn(&Record) -> Result<Vec<u8>, ExportError>,
) -> Result<u64, ExportError> {
    let mut n = 0;
    for record in records.into_iter().filter(|r| filter.matches(r)) {
        out.write_all(&encode(record)?)?;
        out.write_all(b"\n")?;
        n += 1;
    }
    out.flush()?;
    Ok(n)
}
