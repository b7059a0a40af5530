//! The JSON Lines event log: one line per event, appended with a single write so that lines
//! never interleave, flushed to disk after every batch.

use std::{
    fs::{File, OpenOptions},
    io::{self, Write},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

use super::Record;

pub struct EventLog {
    path: PathBuf,
    file: File,
    /// Also print each line on stdout (`run --follow`).
    follow: bool,
    dirty: bool,
}

impl EventLog {
    pub fn open(path: &Path, follow: bool) -> io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            follow,
            dirty: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn append(&mut self, r: &Record) -> io::Result<()> {
        let mut line = serde_json::to_vec(r).map_err(io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)?;
        if self.follow {
            let mut out = io::stdout().lock();
            out.write_all(&line)?;
            out.flush()?;
        }
        self.dirty = true;
        Ok(())
    }

    /// Makes what was appended durable.
    pub fn sync(&mut self) -> io::Result<()> {
        if self.dirty {
            self.file.sync_data()?;
            self.dirty = false;
        }
        Ok(())
    }
}
