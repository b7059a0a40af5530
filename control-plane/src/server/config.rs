//! What `countersign-server serve` is told, and the defaults derived from the data directory.

use std::net::SocketAddr;
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};

use crate::people::{file as people_file, People};
use countersign_api::tls::TlsFiles;

/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/countersign-server";
/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7443";
/// Records between two periodic audit checkpoints (exports add one at their end anyway).
pub const DEFAULT_CHECKPOINT_INTERVAL: u64 = 1000;

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
    /// Actor id of the server's own audit records (expiries, checkpoints).
    pub server_id: String,
    /// Chat file (Slack, Teams); default `DATA_DIR/chat.yaml` when it exists.
    pub chat: Option<PathBuf>,
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
            server_id: format!("countersign-server@{host}"),
            chat: None,
        }
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
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        let path = path.split('?').next().unwrap_or(path);
        return format!("sqlite {path}");
    }
    let (scheme, rest) = url.split_once("://").unwrap_or(("database", url));
    // user:password@host/db → host/db
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let rest = rest.split('?').next().unwrap_or(rest);
    format!("{scheme} {rest}")
}

/// Creates the data directory (mode 0700: it holds the signing key and the database).
pub fn create_data_dir(dir: &Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("creating the data directory {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let c = Config::new("/data", "127.0.0.1:7443".parse().expect("addr"));
        assert_eq!(c.database_url(), "sqlite:///data/countersign.db");
        assert!(tls_files(Some("a".into()), None, None).is_err());
        assert!(tls_files(None, None, None).expect("none").is_none());
    }
}
