//! What `countersign-server serve` is told, and the defaults derived from the data directory.

use std::net::SocketAddr;
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};

use crate::people::{file as people_file, People};
use crate::store::RequestCaps;
use countersign_api::tls::TlsFiles;

/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/countersign-server";
/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7443";
/// Records between two periodic audit checkpoints (exports add one at their end anyway).
pub const DEFAULT_CHECKPOINT_INTERVAL: u64 = 1000;
/// Time after which records written since the last checkpoint are signed.
pub const DEFAULT_CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(300);

/// Server configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Database, keys, development certificates, default people file.
    pub data_dir: PathBuf,
    /// Database URL; default `sqlite://DATA_DIR/countersign.db`.
    pub database: Option<String>,
    /// People file; default `DATA_DIR/people.yaml` (missing there: nobody has roles).
    pub people: Option<PathBuf>,
    /// Policy to store as the first revision when the store has none.
    pub policy: Option<PathBuf>,
    /// Address to listen on (port 0: any free port, see `Running::addr`).
    pub listen: SocketAddr,
    /// CA, certificate and key; `None`: development certificates in `DATA_DIR/certs`.
    pub tls: Option<TlsFiles>,
    /// Records between audit checkpoints.
    pub checkpoint_interval: NonZeroU64,
    /// Time between checkpoints of the records written since the last one.
    pub checkpoint_every: std::time::Duration,
    /// Actor id of the server's own audit records (expiries, checkpoints).
    pub server_id: String,
    /// Chat file (Slack, Teams); default `DATA_DIR/chat.yaml` when it exists.
    pub chat: Option<PathBuf>,
    /// Most approval requests open at once per session and per host.
    pub request_caps: RequestCaps,
    /// File every signed checkpoint is appended to; default
    /// `DATA_DIR/audit-checkpoints.jsonl`.
    pub checkpoint_log: Option<PathBuf>,
}

impl Config {
    /// Defaults for `data_dir`: SQLite and people file inside it, development certificates.
    pub fn new(data_dir: impl Into<PathBuf>, listen: SocketAddr) -> Config {
        let host = super::devcerts::machine_name().unwrap_or_else(|| "localhost".to_owned());
        Config {
            data_dir: data_dir.into(),
            database: None,
            people: None,
            policy: None,
            listen,
            tls: None,
            checkpoint_interval: NonZeroU64::new(DEFAULT_CHECKPOINT_INTERVAL)
                .unwrap_or(NonZeroU64::MIN),
            checkpoint_every: DEFAULT_CHECKPOINT_EVERY,
            server_id: format!("countersign-server@{host}"),
            chat: None,
            request_caps: RequestCaps::DEFAULT,
            checkpoint_log: None,
        }
    }

    /// Where signed checkpoints are published (`store::CheckpointLog`).
    pub fn checkpoint_log_path(&self) -> PathBuf {
        self.checkpoint_log
            .clone()
            .unwrap_or_else(|| self.data_dir.join("audit-checkpoints.jsonl"))
    }

    /// The database URL to open.
    pub fn database_url(&self) -> String {
        self.database.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}",
                self.data_dir.join("countersign.db").display()
            )
        })
    }

    /// Directory of the development certificates.
    pub fn certs_dir(&self) -> PathBuf {
        self.data_dir.join("certs")
    }

    /// Reads the people file: an explicit path must exist; the default path may be missing
    /// (nobody has roles; a warning says so).
    pub fn load_people(&self) -> anyhow::Result<People> {
        match &self.people {
            Some(path) => Ok(people_file::load(path)?),
            None => {
                let path = self.data_dir.join("people.yaml");
                if path.exists() {
                    Ok(people_file::load(&path)?)
                } else {
                    tracing::warn!(path = %path.display(), "no people file: nobody has a role (every person is refused)");
                    Ok(People::default())
                }
            }
        }
    }
}

impl Config {
    /// Reads the chat file: an explicit path must exist; without one, `DATA_DIR/chat.yaml`
    /// is read when present (no file: no chat approvers).
    pub fn load_chat(&self) -> anyhow::Result<Option<crate::chat::ChatConfig>> {
        let path = match &self.chat {
            Some(path) => path.clone(),
            None => {
                let path = self.data_dir.join("chat.yaml");
                if !path.exists() {
                    return Ok(None);
                }
                path
            }
        };
        crate::chat::config::load(&path).map(Some)
    }
}

/// `--tls-ca`, `--tls-cert`, `--tls-key`: all three or none.
pub fn tls_files(
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
) -> anyhow::Result<Option<TlsFiles>> {
    match (ca, cert, key) {
        (None, None, None) => Ok(None),
        (Some(ca), Some(cert), Some(key)) => Ok(Some(TlsFiles { ca, cert, key })),
        _ => bail!("give --tls-ca, --tls-cert and --tls-key together (or none of them for development certificates)"),
    }
}

/// A database URL fit for a log line: the scheme and where, never a password.
pub fn describe_database(url: &str) -> String {
    if let Some(path) = sqlite_location(url) {
        return format!("sqlite {path}");
    }
    let (scheme, rest) = url.split_once("://").unwrap_or(("database", url));
    // user:password@host/db → host/db
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let rest = rest.split('?').next().unwrap_or(rest);
    format!("{scheme} {rest}")
}

/// Creates the data directory with mode 0700 (it holds the signing key and the store, with
/// every session's argv), or tightens an existing one that others could enter (said in the
/// log: `cargo xtask up` once left it 0755).
pub fn create_data_dir(dir: &Path) -> anyhow::Result<()> {
    let tightened = countersign_api::private_dir::ensure(dir)
        .with_context(|| format!("making the data directory {} (mode 0700)", dir.display()))?;
    if let Some(was) = tightened {
        tracing::warn!(
            dir = %dir.display(),
            was = format!("{was:o}"),
            "the data directory was open to others: made it 0700"
        );
    }
    Ok(())
}

/// Creates a new SQLite store file with mode 0600 (SQLite gives its journal files the mode of
/// the database), and refuses one, or a journal file, that others can read: it holds every
/// session's argv and the approvals. Other databases keep their own access control.
pub fn prepare_private_store(url: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let Some(path) = sqlite_path(url) else {
        return Ok(());
    };
    if !path.exists() {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("creating the store {}", path.display()))?;
    }
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        let Ok(md) = std::fs::metadata(&file) else {
            continue;
        };
        let mode = md.permissions().mode();
        if mode & 0o077 != 0 {
            bail!(
                "the store {} is readable by others (mode {:o}): chmod 600 it (it holds every \
                 session's argv and the approvals)",
                file.display(),
                mode & 0o777
            );
        }
    }
    Ok(())
}

/// The file of a `sqlite:` URL (None for another database or an in-memory one).
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let path = sqlite_location(url)?;
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

/// What a SQLite URL names (a path, or `:memory:`), without its options; None for another
/// database.
fn sqlite_location(url: &str) -> Option<&str> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    Some(path.split('?').next().unwrap_or(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_directory_and_the_store_are_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        let tmp = tempfile::tempdir().expect("tempdir");
        // Created private; an existing one open to others (as `xtask up` once left it) is
        // made private.
        let dir = tmp.path().join("data");
        create_data_dir(&dir).expect("create");
        assert_eq!(mode(&dir), 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        create_data_dir(&dir).expect("tighten");
        assert_eq!(mode(&dir), 0o700);
        // A new store file is 0600; one others can read is refused, naming it.
        let db = dir.join("countersign.db");
        let url = format!("sqlite://{}?mode=rwc", db.display());
        prepare_private_store(&url).expect("new store");
        assert_eq!(mode(&db), 0o600);
        prepare_private_store(&url).expect("private store");
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let e = prepare_private_store(&url).expect_err("readable store");
        assert!(
            e.to_string().starts_with(&format!(
                "the store {} is readable by others (mode 644): chmod 600",
                db.display()
            )),
            "{e:#}"
        );
        prepare_private_store("postgres://h/db").expect("not a file");
    }

    #[test]
    fn database_descriptions_hide_passwords() {
        assert_eq!(
            describe_database("sqlite:///var/lib/x/c.db"),
            "sqlite /var/lib/x/c.db"
        );
        assert_eq!(
            describe_database("sqlite:/tmp/c.db?mode=rwc"),
            "sqlite /tmp/c.db"
        );
        assert_eq!(
            describe_database("postgres://cs:s3cret@db.example:5432/cs?sslmode=require"),
            "postgres db.example:5432/cs"
        );
        assert_eq!(
            sqlite_path("sqlite:///var/lib/x/c.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/x/c.db"))
        );
        assert_eq!(sqlite_path("postgres://h/db"), None);
        let c = Config::new("/data", "127.0.0.1:7443".parse().expect("addr"));
        assert_eq!(c.database_url(), "sqlite:///data/countersign.db");
        assert!(tls_files(Some("a".into()), None, None).is_err());
        assert!(tls_files(None, None, None).expect("none").is_none());
    }
}
