//! Storage of the control plane: one schema on SQLite (default, zero set-up) or PostgreSQL
//! (several replicas), reached through sqlx's `Any` driver so that one code path serves both.
//!
//! Every write that touches the audit trail goes through one [`writer::Writer`]: it holds the
//! in-memory [`ChainState`](crate::audit::ChainState) behind a mutex *and* a row lock on the
//! one-row `audit_head` table for the whole transaction, so records are chained in commit
//! order even with several replicas on one PostgreSQL database. Events, audit records,
//! requests, grants and decision events of one operation commit together or not at all.
//!
//! All times are unix milliseconds (`BIGINT`) in the database.

mod audit;
mod bulk;
mod chat;
mod checkpoint_log;
mod codec;
mod decisions;
mod error;
mod grants;
mod hosts;
mod ids;
mod ingest;
mod policies;
mod requests;
mod rows;
mod schema;
mod sessions;
mod stream;
mod subjects;
mod writer;

use std::num::NonZeroU64;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;
use sqlx::Executor as _;
use tokio::sync::{broadcast, Mutex};

use crate::audit::{SigningKey, VerifyingKey};

pub use chat::{ChatRefusal, LinkRow, MessageRow};
pub use checkpoint_log::CheckpointLog;
pub use error::{AuditError, StoreError};
pub use requests::RequestCaps;
pub use rows::{
    Close, Decided, DecisionRow, GrantRow, Ingest, IngestOutcome, Judgement, PolicyRow,
    RequestFilter, RequestRow, RequestSpec, RequestState, Verdict,
};

/// Which database the store runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A local file (default): one server process.
    Sqlite,
    /// A PostgreSQL database: several replicas may share it.
    Postgres,
}

impl Backend {
    /// From the URL scheme.
    fn of_url(url: &str) -> Result<Backend, StoreError> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            other => Err(StoreError::Url(other.chars().take(20).collect())),
        }
    }
}

/// The control plane's database. Cheap to clone (one shared pool and chain writer).
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    pool: AnyPool,
    backend: Backend,
    key: SigningKey,
    interval: NonZeroU64,
    server_id: String,
    /// The audit chain writer; `None` until loaded, and again after a failed transaction
    /// (the next writer re-reads the head from the database).
    chain: Mutex<writer::ChainSlot>,
    /// Hosts with new decision events, sent after commit.
    wake: broadcast::Sender<String>,
    /// Most open approval requests per session and per host.
    caps: std::sync::RwLock<RequestCaps>,
    /// Where committed checkpoints are published besides the server's log.
    checkpoint_log: std::sync::OnceLock<CheckpointLog>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.inner.backend)
            .field("server_id", &self.inner.server_id)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens `url` — `sqlite:///var/lib/x/countersign.db` (file and directory created if
    /// missing) or
    /// `postgres://user@host/db` — and applies the migrations. `audit_key` signs a checkpoint
    /// every `checkpoint_interval` records; `server_id` is the actor of server records.
    pub async fn open(
        url: &str,
        audit_key: SigningKey,
        checkpoint_interval: NonZeroU64,
        server_id: &str,
    ) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url)?;
        let pool = match backend {
            Backend::Sqlite => {
                // Readers run in parallel under WAL; writers are serialised by the chain mutex
                // anyway. An in-memory database exists once per connection: one only.
                let connections = if url.contains(":memory:") { 1 } else { 4 };
                if let Some(dir) = sqlite_dir(url) {
                    tokio::fs::create_dir_all(dir)
                        .await
                        .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
                }
                AnyPoolOptions::new()
                    .max_connections(connections)
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            // WAL: readers never block the writer; NORMAL: durable across a
                            // process crash, at most the last commits lost on power loss,
                            // without an fsync per transaction. busy_timeout: other processes
                            // on the same file wait instead of failing.
                            conn.execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                                 PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = OFF",
                            )
                            .await?;
                            Ok(())
                        })
                    })
                    .connect(&sqlite_url(url))
                    .await?
            }
            Backend::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect(url)
                    .await?
            }
        };
        schema::migrate(&pool, backend).await?;
        let (wake, _) = broadcast::channel(1024);
        let store = Store {
            inner: Arc::new(Inner {
                pool,
                backend,
                key: audit_key,
                interval: checkpoint_interval,
                server_id: server_id.to_owned(),
                chain: Mutex::new(writer::ChainSlot::default()),
                wake,
                caps: std::sync::RwLock::new(RequestCaps::default()),
                checkpoint_log: std::sync::OnceLock::new(),
            }),
        };
        // Load the chain head now so that a broken chain shows at start, not at first write.
        store.writer().await?.commit().await?;
        Ok(store)
    }

    /// Sets the most open approval requests per session and per host (`RequestCaps`).
    pub fn set_request_caps(&self, caps: RequestCaps) {
        *self.inner.caps.write().unwrap_or_else(|p| p.into_inner()) = caps;
    }

    /// Publishes every checkpoint committed from now on to `log` too (once per store: a
    /// second call is refused and returns the log).
    pub fn publish_checkpoints_to(&self, log: CheckpointLog) -> Result<(), CheckpointLog> {
        self.inner.checkpoint_log.set(log)
    }

    fn request_caps(&self) -> RequestCaps {
        *self.inner.caps.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// Public key of the audit checkpoints.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.inner.key.verifying_key()
    }

    /// Wakes (with the host name) when this process wrote decision events for a host. Other
    /// replicas' events are not announced: poll `decision_events` as well.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.inner.wake.subscribe()
    }

    /// Schema versions applied to the database, in order.
    pub async fn schema_versions(&self) -> Result<Vec<i64>, StoreError> {
        schema::versions(self.pool()).await
    }

    /// Closes the pool (waits for connections to be returned).
    pub async fn close(&self) {
        self.inner.pool.close().await;
    }

    /// Actor id of the records the server writes itself.
    pub fn server_id(&self) -> &str {
        &self.inner.server_id
    }

    fn pool(&self) -> &AnyPool {
        &self.inner.pool
    }
}

/// The directory of a SQLite database file (created when missing, like the file).
fn sqlite_dir(url: &str) -> Option<&std::path::Path> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path.contains(":memory:") {
        return None;
    }
    std::path::Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
}

/// `sqlite:` URLs create the file when missing (sqlx's default is to fail).
fn sqlite_url(url: &str) -> String {
    if url.contains("mode=") || url.contains(":memory:") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

/// The current time at the store's precision (milliseconds), so that what a call returns
/// equals what a later read of the same row returns (idempotent replays compare equal).
pub fn now() -> std::time::SystemTime {
    crate::audit::Timestamp::now().system_time()
}
