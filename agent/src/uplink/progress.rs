//! `STATE_DIR/uplink.json`: how far the upload and the decision stream got, so that a
//! restarted daemon resumes where it stopped instead of sending (or applying) everything again.

use std::{
    collections::BTreeMap,
    io,
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};

/// Grant ids remembered as installed, at most (the oldest expiries go first).
const MAX_INSTALLED: usize = 4096;

/// What `uplink.json` holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Highest event sequence (1-based line of events.jsonl) the server acknowledged.
    pub acked: u64,
    /// Byte offset in events.jsonl just after line `acked`.
    pub offset: u64,
    /// Cursor of the last decision event applied (empty: from the beginning).
    pub cursor: String,
    /// Grants already written into the kernel (grant id → expiry, unix ms): a decision event
    /// replayed after a crash must not hand out a one-use grant a second time.
    #[serde(default)]
    pub installed: BTreeMap<String, i64>,
}

impl Progress {
    /// The file of `state_dir`.
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join("uplink.json")
    }

    /// Reads the file; a missing one is a fresh start, an unreadable one too (with a warning:
    /// everything is uploaded again, which the server de-duplicates by sequence).
    pub fn load(state_dir: &Path) -> Self {
        let path = Self::path(state_dir);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), error = %e, "unreadable uplink progress; starting over");
                Self::default()
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Self::default(),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "unreadable uplink progress; starting over");
                Self::default()
            }
        }
    }

    /// Writes the file atomically.
    pub fn save(&self, state_dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(state_dir)?;
        let bytes = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        crate::atomic_file::write(&Self::path(state_dir), &bytes)
    }

    /// Remembers an installed grant, forgetting the expired ones.
    pub fn mark_installed(&mut self, grant_id: &str, expires: SystemTime) {
        let now = unix_ms(SystemTime::now());
        self.installed.retain(|_, exp| *exp > now);
        while self.installed.len() >= MAX_INSTALLED {
            let oldest = self
                .installed
                .iter()
                .min_by_key(|(_, exp)| **exp)
                .map(|(id, _)| id.clone());
            match oldest {
                Some(id) => self.installed.remove(&id),
                None => break,
            };
        }
        self.installed.insert(grant_id.to_owned(), unix_ms(expires));
    }

    /// The server acknowledges fewer events than it did before (a restored or new store): it
    /// has forgotten its decision cursors too, so the stream is followed from the start
    /// (replayed grants are skipped: installed before, or expired; the rest is idempotent).
    /// Returns whether the cursor was reset.
    pub fn server_forgot(&mut self, server_acked: u64) -> bool {
        if server_acked < self.acked && !self.cursor.is_empty() {
            self.cursor.clear();
            return true;
        }
        false
    }

    /// Whether a grant was installed already.
    pub fn was_installed(&self, grant_id: &str) -> bool {
        self.installed.contains_key(grant_id)
    }
}

/// Unix milliseconds of `t` (0 before the epoch).
pub fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn round_trips_and_tolerates_old_files() {
        let dir = std::env::temp_dir().join(format!("cs-progress-{}", std::process::id()));
        assert_eq!(Progress::load(&dir), Progress::default());
        let mut p = Progress {
            acked: 12,
            offset: 3456,
            cursor: "77".into(),
            ..Default::default()
        };
        p.mark_installed(
            "00000000000000aa",
            SystemTime::now() + Duration::from_secs(60),
        );
        p.save(&dir).expect("save");
        assert_eq!(Progress::load(&dir), p);
        // The contract's three fields alone are a valid file.
        std::fs::write(
            Progress::path(&dir),
            br#"{"acked": 3, "offset": 10, "cursor": ""}"#,
        )
        .expect("write");
        assert_eq!(Progress::load(&dir).acked, 3);
        std::fs::write(Progress::path(&dir), b"garbage").expect("write");
        assert_eq!(Progress::load(&dir), Progress::default());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_forgetful_server_resets_the_cursor() {
        let mut p = Progress {
            acked: 19,
            offset: 100,
            cursor: "22".into(),
            ..Default::default()
        };
        assert!(!p.server_forgot(19));
        assert!(
            !p.server_forgot(25),
            "a server that knows more keeps its cursors"
        );
        assert_eq!(p.cursor, "22");
        assert!(p.server_forgot(0));
        assert_eq!(p.cursor, "");
        assert!(!p.server_forgot(0), "nothing left to reset");
    }

    #[test]
    fn expired_grants_are_forgotten() {
        let mut p = Progress::default();
        p.mark_installed("a", SystemTime::now() - Duration::from_secs(1));
        p.mark_installed("b", SystemTime::now() + Duration::from_secs(60));
        assert!(!p.was_installed("a"));
        assert!(p.was_installed("b"));
    }
}
