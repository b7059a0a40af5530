//! A fresh database per test: a temporary SQLite file, or a uniquely named PostgreSQL
//! database created on the test server.

use std::num::NonZeroU64;

use control_plane::audit::SigningKey;
use control_plane::store::Store;
use sqlx::{AnyConnection, Connection as _, Executor as _};

/// Checkpoint interval of the test stores (small, so that tests cross several).
pub const INTERVAL: u64 = 5;

/// The test signing key.
pub fn key() -> SigningKey {
    SigningKey::from_bytes(&[42; 32])
}

/// One test's database.
pub struct Db {
    /// What `Store::open` gets.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    /// PostgreSQL: the server URL and the database to drop afterwards.
    pg: Option<(String, String)>,
}

impl Db {
    /// A new SQLite file in a temporary directory.
    pub fn sqlite() -> Db {
        let dir = tempfile::tempdir().expect("temp dir");
        // In a directory that does not exist yet: the store creates it.
        let file = dir.path().join("state").join("countersign.db");
        let url = format!("sqlite://{}", file.display());
        Db {
            url,
            _dir: Some(dir),
            pg: None,
        }
    }

    /// A new database on the PostgreSQL test server; None (with the reason printed) when
    /// there is none and it is not required.
    pub async fn postgres(test: &str) -> Option<Db> {
        let Ok(server) = std::env::var("COUNTERSIGN_TEST_POSTGRES") else {
            let required = std::env::var("COUNTERSIGN_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "COUNTERSIGN_REQUIRE_POSTGRES=1 but COUNTERSIGN_TEST_POSTGRES is not set"
            );
            println!(
                "skipped {test} on PostgreSQL: COUNTERSIGN_TEST_POSTGRES is not set \
                 (a postgres:// URL of a server where tests may create databases; \
                 `cargo xtask test` starts one)"
            );
            return None;
        };
        sqlx::any::install_default_drivers();
        let name = format!("cs_{}_{:08x}", test, rand::random::<u32>());
        let mut admin = AnyConnection::connect(&server)
            .await
            .unwrap_or_else(|e| panic!("connecting to the PostgreSQL test server: {e}"));
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create test database");
        admin.close().await.ok();
        Some(Db {
            url: with_database(&server, &name),
            _dir: None,
            pg: Some((server, name)),
        })
    }

    /// Opens (or reopens) the store.
    pub async fn open(&self) -> Store {
        self.open_as("cs-test").await
    }

    /// Opens the store as another server (a second replica).
    pub async fn open_as(&self, server_id: &str) -> Store {
        self.open_with(server_id, INTERVAL).await
    }

    /// Opens the store with a checkpoint every `interval` records.
    pub async fn open_with(&self, server_id: &str, interval: u64) -> Store {
        let interval = NonZeroU64::new(interval).expect("non-zero");
        Store::open(&self.url, key(), interval, server_id)
            .await
            .unwrap_or_else(|e| panic!("opening {}: {e}", self.url))
    }

    /// A raw connection (for tampering).
    pub async fn raw(&self) -> AnyConnection {
        sqlx::any::install_default_drivers();
        AnyConnection::connect(&self.url)
            .await
            .expect("raw connection")
    }

    /// Drops the PostgreSQL database (best effort: the server is throw-away anyway).
    pub async fn drop_database(&self) {
        if let Some((server, name)) = &self.pg {
            if let Ok(mut admin) = AnyConnection::connect(server).await {
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                let _ = admin.execute(sql.as_str()).await;
            }
        }
    }
}

/// `server` with its database path replaced by `name`.
fn with_database(server: &str, name: &str) -> String {
    let (base, query) = match server.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (server, String::new()),
    };
    let authority_end = base
        .find("://")
        .map(|i| i + 3)
        .and_then(|start| base[start..].find('/').map(|j| start + j))
        .unwrap_or(base.len());
    format!("{}/{name}{query}", &base[..authority_end])
}
