//! The bindings file (`STATE_DIR/bindings.jsonl`): every operation the daemon may be asked to
//! grant, one JSON line each, so that an approval given while the daemon restarted still
//! finds the exact operation it names. Appended as operations are seen, rewritten (atomically)
//! when it holds twice as many lines as the daemon keeps.
//!
//! Each line holds the binding itself (rule, file identity and the captured argument bytes in
//! hex, or the destination), never just its id: the id is recomputed on load, so a line that
//! was edited names the operation it now describes, not the one it claims.

use std::{
    fs,
    io::{self, Write},
    net::{IpAddr, Ipv6Addr},
    path::{Path, PathBuf},
};

use agent_common::{
    binding::{Binding, Capture, Target},
    ARGV_LEN,
};
use serde::{Deserialize, Serialize};

/// One line.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum Line {
    Exec {
        rule: u32,
        dev: u64,
        ino: u64,
        /// The file's write stamp (absent: 0, as lines before stamps were kept).
        #[serde(default, skip_serializing_if = "is_zero")]
        stamp: u64,
        /// The captured argv[1..] bytes, hex.
        argv: String,
    },
    Connect {
        rule: u32,
        addr: Ipv6Addr,
        port: u16,
        protocol: u16,
    },
}

impl Line {
    /// None for a truncated capture: it is never granted, so never kept.
    fn of(b: &Binding) -> Option<Self> {
        Some(match &b.target {
            Target::Exec {
                dev,
                ino,
                stamp,
                argv,
            } if !argv.truncated => Self::Exec {
                rule: b.rule,
                dev: *dev,
                ino: *ino,
                stamp: *stamp,
                argv: hex::encode(&argv.buf[..argv.len as usize]),
            },
            Target::Exec { .. } => return None,
            Target::Connect {
                addr,
                port,
                protocol,
            } => Self::Connect {
                rule: b.rule,
                addr: Ipv6Addr::from(*addr),
                port: *port,
                protocol: *protocol,
            },
        })
    }

    fn binding(self) -> Option<Binding> {
        Some(match self {
            Self::Exec {
                rule,
                dev,
                ino,
                stamp,
                argv,
            } => {
                let bytes = hex::decode(&argv).ok()?;
                if bytes.len() >= ARGV_LEN {
                    return None;
                }
                Binding {
                    rule,
                    target: Target::Exec {
                        dev,
                        ino,
                        stamp,
                        argv: Capture::exact(&bytes, false),
                    },
                }
            }
            Self::Connect {
                rule,
                addr,
                port,
                protocol,
            } => Binding::connect(rule, IpAddr::V6(addr), port, protocol),
        })
    }
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// The file.
pub struct BindingsFile {
    path: PathBuf,
    /// Lines in the file now.
    lines: usize,
}

impl BindingsFile {
    /// Opens `path` and returns the bindings it holds, oldest first (a missing file holds
    /// none; unreadable lines are skipped with a warning).
    pub fn open(path: &Path) -> io::Result<(Self, Vec<Binding>)> {
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        let mut lines = 0;
        let mut found = Vec::new();
        for (n, line) in text.lines().enumerate() {
            lines += 1;
            match serde_json::from_str::<Line>(line)
                .ok()
                .and_then(Line::binding)
            {
                Some(b) => found.push(b),
                None => {
                    tracing::warn!(path = %path.display(), line = n + 1, "not a binding; skipped")
                }
            }
        }
        let file = Self {
            path: path.to_owned(),
            lines,
        };
        Ok((file, found))
    }

    /// Lines in the file.
    pub fn lines(&self) -> usize {
        self.lines
    }

    /// Appends `b` (nothing for a truncated capture).
    pub fn append(&mut self, b: &Binding) -> io::Result<()> {
        let Some(line) = Line::of(b) else {
            return Ok(());
        };
        let mut text = serde_json::to_string(&line).map_err(io::Error::other)?;
        text.push('\n');
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        f.write_all(text.as_bytes())?;
        self.lines += 1;
        Ok(())
    }

    /// Replaces the file's content with `bindings` (atomically).
    pub fn rewrite<'a>(&mut self, bindings: impl Iterator<Item = &'a Binding>) -> io::Result<()> {
        let mut text = String::new();
        let mut lines = 0;
        for line in bindings.filter_map(Line::of) {
            text.push_str(&serde_json::to_string(&line).map_err(io::Error::other)?);
            text.push('\n');
            lines += 1;
        }
        crate::atomic_file::write(&self.path, text.as_bytes())?;
        self.lines = lines;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_keep_the_exact_operation() {
        let exec = Binding::exec(3, (8 << 20) | 1, 42, &[b"k".as_slice(), b"a\xffb", b""]);
        let written = exec.clone().stamped(77);
        let connect = Binding::connect(2, "10.0.0.1".parse().expect("ip"), 5432, 6);
        for b in [exec, written, connect] {
            let line = Line::of(&b).expect("kept");
            let text = serde_json::to_string(&line).expect("json");
            let back: Line = serde_json::from_str(&text).expect("parsed");
            assert_eq!(back.binding(), Some(b));
        }
        let long = "p".repeat(600);
        assert_eq!(
            Line::of(&Binding::exec(1, 1, 1, &["x", long.as_str()])),
            None
        );
        for bad in [
            r#"{"kind":"exec","rule":1,"dev":1,"ino":1,"argv":"0g"}"#,
            r#"{"kind":"exec","rule":1,"dev":1,"ino":1,"argv":"123"}"#,
            r#"{"kind":"mount","rule":1}"#,
        ] {
            let parsed = serde_json::from_str::<Line>(bad)
                .ok()
                .and_then(Line::binding);
            assert_eq!(parsed, None, "{bad}");
        }
    }

    #[test]
    fn the_file_survives_a_restart_and_is_rewritten() {
        let dir = std::env::temp_dir().join(format!("cs-bindings-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("bindings.jsonl");
        let _ = fs::remove_file(&path);
        let a = Binding::exec(1, 2, 3, &["x", "a"]);
        let b = Binding::connect(1, "::1".parse().expect("ip"), 22, 6);
        let (mut f, found) = BindingsFile::open(&path).expect("new");
        assert!(found.is_empty());
        f.append(&a).expect("append");
        f.append(&b).expect("append");
        fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut w| w.write_all(b"garbage\n"))
            .expect("garbage");
        let (mut f, found) = BindingsFile::open(&path).expect("reopen");
        assert_eq!((found, f.lines()), (vec![a.clone(), b.clone()], 3));
        f.rewrite([&b].into_iter()).expect("rewrite");
        let (_, found) = BindingsFile::open(&path).expect("reopen");
        assert_eq!(found, vec![b]);
        let _ = fs::remove_dir_all(&dir);
    }
}
