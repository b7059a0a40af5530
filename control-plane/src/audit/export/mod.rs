//! Exports for auditors: JSON Lines (verifiable), CSV (spreadsheets), OCSF (SIEMs).
//!
//! Each writer takes the records in chain order and a [`Filter`](super::filter::Filter),
//! writes the selected ones, and returns how many it wrote.

pub mod csv;
pub mod jsonl;
pub mod ocsf;

use thiserror::Error;

use super::canonical::EncodeError;

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
