//! A running control-plane server: configuration, start-up (data directory, audit key,
//! store, people, seed policy, TLS), the gRPC services, background tasks and shutdown.
//!
//! The binary (`countersign-server serve`) and the loopback tests start servers the same way:
//! [`start`] returns once the socket is bound, [`Running::stop`] shuts down gracefully.

pub mod config;
pub mod devcerts;
pub mod endpoints;
pub mod keys;
pub mod tasks;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;

pub use config::Config;

use crate::people::logins::Logins;
use crate::people::People;
use crate::rpc::{self, Ctx};
use crate::store::{CheckpointLog, Store};

/// How long a shutdown waits for calls in flight.
pub const DRAIN: Duration = Duration::from_secs(10);

/// A server serving on [`Running::addr`].
pub struct Running {
    /// The bound address (the real port when the configuration said 0).
    pub addr: SocketAddr,
    /// `sqlite PATH` or `postgres HOST/DB`, for the ready line.
    pub store_description: String,
    /// The store, for callers that want to look inside (tests).
    pub store: Store,
    /// The people file in force.
    pub people: Arc<People>,
    /// Address of the chat endpoints, when chats are configured.
    pub chat_addr: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    stopping: watch::Sender<bool>,
    serve: Option<JoinHandle<Result<(), tonic::transport::Error>>>,
    background: Vec<JoinHandle<()>>,
}

impl Drop for Running {
    /// Dropping a server stops it (the shutdown signal's sender goes away) and its
    /// background tasks, without waiting.
    fn drop(&mut self) {
        self.background.iter().for_each(JoinHandle::abort);
    }
}

/// Prepares everything and starts serving; returns once the socket is bound.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    config::create_data_dir(&config.data_dir)?;
    let key = keys::load_or_create(&config.data_dir)?;
    let people = Arc::new(config.load_people()?);
    let chat_config = config.load_chat()?;
    let tls_files = match &config.tls {
        Some(files) => files.clone(),
        None => {
            let dir = config.certs_dir();
            let files = devcerts::ensure(&dir, &people)?;
            tracing::warn!(dir = %dir.display(), "using development certificates (give --tls-ca, --tls-cert and --tls-key in production)");
            files
        }
    };
    let url = config.database_url();
    let store_description = config::describe_database(&url);
    config::prepare_private_store(&url)?;
    let store = Store::open(&url, key, config.checkpoint_interval, &config.server_id)
        .await
        .with_context(|| format!("opening the store ({store_description})"))?;
    store.set_request_caps(config.request_caps);
    let published = config.checkpoint_log_path();
    let log = CheckpointLog::open(&published)
        .with_context(|| format!("opening the checkpoint log {}", published.display()))?;
    let _ = store.publish_checkpoints_to(log);
    if let Some(path) = &config.policy {
        seed_policy(&store, path).await?;
    }
    let (logins, login_rx) = Logins::new();
    let (stopping_tx, stopping) = watch::channel(false);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let mut background = vec![
        tokio::spawn(tasks::expire(store.clone())),
        tokio::spawn(tasks::checkpoint(store.clone(), config.checkpoint_every)),
        tokio::spawn(tasks::record_logins(store.clone(), login_rx)),
    ];
    let mut endpoints = vec![endpoints::listener(addr, "grpc")];
    let mut chat_addr = None;
    if let Some(chat) = &chat_config {
        let running =
            crate::chat::start(chat, store.clone(), people.clone(), stopping_tx.subscribe())
                .await?;
        chat_addr = Some(running.addr);
        endpoints.push(endpoints::listener(running.addr, "chat"));
        background.extend(running.tasks);
    }
    endpoints.extend(endpoints::database(&url).await);
    let ctx = Ctx::new(store.clone(), people.clone(), logins, stopping, endpoints);
    let router = Server::builder()
        .tls_config(tls::config(&tls_files)?)
        .context("TLS configuration")?
        // Long-lived Decisions streams: notice dead peers instead of holding them forever.
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .add_routes(rpc::routes(&ctx));
    let (stop, stopped) = oneshot::channel::<()>();
    let serve = tokio::spawn(router.serve_with_incoming_shutdown(
        TcpIncoming::from(listener).with_nodelay(Some(true)),
        async {
            let _ = stopped.await;
        },
    ));
    Ok(Running {
        addr,
        store_description,
        store,
        people,
        chat_addr,
        stop: Some(stop),
        stopping: stopping_tx,
        serve: Some(serve),
        background,
    })
}

impl Running {
    /// Serves until `signal` completes (then stops gracefully) or the server fails.
    pub async fn serve_until(mut self, signal: impl Future<Output = ()>) -> anyhow::Result<()> {
        let Some(mut serve) = self.serve.take() else {
            anyhow::bail!("the server was already stopped");
        };
        let failed = tokio::select! {
            () = signal => None,
            result = &mut serve => Some(result),
        };
        match failed {
            None => {
                tracing::info!("shutting down: draining calls in flight");
                self.serve = Some(serve);
                self.stop().await
            }
            Some(result) => {
                self.background.iter().for_each(JoinHandle::abort);
                self.store.close().await;
                result.context("gRPC server task")?.context("gRPC server")?;
                anyhow::bail!("the gRPC server stopped by itself")
            }
        }
    }

    /// Stops accepting, ends the decision streams, waits (at most [`DRAIN`]) for calls in
    /// flight, stops the background tasks and closes the store.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let _ = self.stopping.send(true);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let served = match self.serve.take() {
            Some(mut serve) => match tokio::time::timeout(DRAIN, &mut serve).await {
                Ok(result) => Some(result),
                Err(_) => {
                    tracing::warn!("calls still in flight after {DRAIN:?}: closing them");
                    serve.abort();
                    None
                }
            },
            None => None,
        };
        self.background.iter().for_each(JoinHandle::abort);
        self.store.close().await;
        match served {
            Some(result) => result.context("gRPC server task")?.context("gRPC server"),
            None => Ok(()),
        }
    }
}

/// Stores the policy file as the first revision (author `bootstrap`) when the store holds
/// none; a store that has one keeps it (the file is then ignored, with a note in the log).
async fn seed_policy(store: &Store, path: &std::path::Path) -> anyhow::Result<()> {
    if let Some(current) = store.current_policy().await? {
        tracing::info!(revision = %current.revision, file = %path.display(), "the store already holds a policy; --policy ignored");
        return Ok(());
    }
    policy::Policy::load(&[path.to_owned()]).map_err(|e| anyhow::anyhow!("{e}"))?;
    let yaml = std::fs::read_to_string(path)
        .with_context(|| format!("reading the policy {}", path.display()))?;
    let row = store
        .put_policy(
            &yaml,
            "bootstrap",
            &format!("seeded from {}", path.display()),
            "",
            SystemTime::now(),
        )
        .await?;
    tracing::info!(revision = %row.revision, file = %path.display(), "policy seeded");
    Ok(())
}
