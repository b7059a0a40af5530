//! A second copy of every audit checkpoint, outside the database: each one the server commits
//! is appended, as its export line, to a JSON Lines file (and said in the server's log), so
//! that whoever later owns the database — and even the signing key — cannot rewrite or cut
//! the trail unseen: `countersign audit verify --published FILE` compares an export with the
//! checkpoints published before. Kept off this host (the log shipped to syslog, the file
//! append-only or copied away), it is what an attacker of this host cannot reach.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::audit::{canonical, Kind, Record};

/// The file checkpoints are appended to.
#[derive(Debug)]
pub struct CheckpointLog {
    path: PathBuf,
    file: Mutex<File>,
}

impl CheckpointLog {
    /// Opens (creates, owner-only) `path` for appending.
    pub fn open(path: &Path) -> std::io::Result<CheckpointLog> {
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)?;
        Ok(CheckpointLog {
            path: path.to_owned(),
            file: Mutex::new(file),
        })
    }

    /// Where it writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Publishes the checkpoints among `records` (committed): a log line each, and a line in
    /// the file, synced. A failure is logged, never fatal: the records are committed, and an
    /// auditor finds the gap (`verify --published` names the checkpoints it has).
    pub fn publish(log: Option<&CheckpointLog>, records: &[Record]) {
        for record in records.iter().filter(|r| r.kind == Kind::Checkpoint) {
            tracing::info!(
                seq = record.seq,
                hash = %record.hash.to_hex(),
                "audit checkpoint signed"
            );
            if let Some(log) = log {
                if let Err(e) = log.append(record) {
                    tracing::error!(
                        path = %log.path.display(),
                        seq = record.seq,
                        error = %e,
                        "audit checkpoint not published to the checkpoint log"
                    );
                }
            }
        }
    }

    fn append(&self, record: &Record) -> std::io::Result<()> {
        let mut line = canonical::line_bytes(record).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        // One write of the whole line: O_APPEND puts it at the end whole.
        (&*file).write_all(&line)?;
        file.sync_data()
    }
}
