//! The daemon's link to the control plane (`countersign-agent run --server …`): registration,
//! event upload from the event log, the decision stream (grants, revocations, request news),
//! policy distribution, ask-ahead forwarding and per-session kernel counters, over one
//! mutual-TLS gRPC channel.
//!
//! Enforcement never depends on the link: when the server is away the kernel keeps judging,
//! events stay in the log (the spool), asks wait in memory, and the link retries with backoff.

pub mod backoff;
pub mod client;
pub mod convert;
pub mod decisions;
pub mod enforcer;
pub mod error;
pub mod evidence;
pub mod forward;
pub mod policy_sync;
pub mod progress;
pub mod spool;
pub mod upload;

use std::{
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, AtomicI64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, SystemTime},
};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

pub use client::Config;
pub use enforcer::{Enforcer, GrantOrder};
pub use forward::{Ask, Forwarder};

use crate::{approvals::RequestTable, session::Registry};
use backoff::{Backoff, StateLog};
use error::LinkError;
use progress::Progress;
use spool::Position;

const REGISTER_TIMEOUT: Duration = Duration::from_secs(15);
/// A clock further off the server's than this is worth a warning (grant lifetimes are
/// computed from the server's times).
const SKEW_WARNING: Duration = Duration::from_secs(5);

/// The link's state, shared by the uplink task, the admin socket (`status`) and the agent
/// socket.
pub struct Link {
    pub config: Config,
    pub state_dir: PathBuf,
    pub event_log: PathBuf,
    /// Notified by the event sink after it appended (and synced) records.
    pub appended: Arc<Notify>,
    pub table: Arc<RequestTable>,
    pub forwarder: Forwarder,
    pub sessions: Arc<Registry>,
    connected: AtomicBool,
    /// The server has accepted a registration that carried the previous daemon's outage:
    /// later registrations (reconnections) leave it out, so it is recorded once.
    outage_reported: AtomicBool,
    /// Server clock minus ours, milliseconds (from the last Register).
    skew_ms: AtomicI64,
    progress: tokio::sync::Mutex<Progress>,
    /// What `status` shows without touching the async mutex.
    shown: Mutex<Shown>,
    /// A server policy revision that failed to install (not retried).
    refused_policy: Mutex<Option<String>>,
}

#[derive(Clone, Debug, Default)]
struct Shown {
    acked: u64,
    offset: u64,
    cursor: String,
    host: String,
    last_error: Option<String>,
}

/// The link as `countersign-agent status` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UplinkStatus {
    pub server: String,
    pub connected: bool,
    /// Host name the server recognised from our certificate.
    pub host: String,
    /// Highest event sequence the server acknowledged.
    pub acked: u64,
    /// Events in the log not acknowledged yet.
    pub spooled: u64,
    /// Cursor of the last decision event applied.
    pub cursor: String,
    /// Ask-ahead requests waiting for the link.
    pub queued_requests: usize,
    /// Why the link is down, when it is.
    pub last_error: Option<String>,
}

impl Link {
    pub fn new(
        config: Config,
        state_dir: PathBuf,
        event_log: PathBuf,
        table: Arc<RequestTable>,
        sessions: Arc<Registry>,
    ) -> Self {
        let progress = Progress::load(&state_dir);
        let shown = Shown {
            acked: progress.acked,
            offset: progress.offset,
            cursor: progress.cursor.clone(),
            ..Default::default()
        };
        Self {
            config,
            state_dir,
            event_log,
            appended: Arc::new(Notify::new()),
            table,
            forwarder: Forwarder::default(),
            sessions,
            connected: AtomicBool::new(false),
            outage_reported: AtomicBool::new(false),
            skew_ms: AtomicI64::new(0),
            progress: tokio::sync::Mutex::new(progress),
            shown: Mutex::new(shown),
            refused_policy: Mutex::new(None),
        }
    }

    /// Whether the daemon is registered with the server right now.
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    fn shown(&self) -> std::sync::MutexGuard<'_, Shown> {
        self.shown.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// For `status` (blocking: counts the log lines not acknowledged yet).
    pub fn status(&self) -> UplinkStatus {
        let shown = self.shown().clone();
        let spooled = spool::count_after(&self.event_log, shown.offset).unwrap_or(0);
        UplinkStatus {
            server: self.config.server.clone(),
            connected: self.connected(),
            host: shown.host,
            acked: shown.acked,
            spooled,
            cursor: shown.cursor,
            queued_requests: self.forwarder.len(),
            last_error: shown.last_error,
        }
    }

    /// The server's clock now, as well as we know it.
    pub fn server_now(&self) -> SystemTime {
        let skew = self.skew_ms.load(Ordering::Relaxed);
        let now = SystemTime::now();
        let d = Duration::from_millis(skew.unsigned_abs());
        if skew >= 0 {
            now + d
        } else {
            now.checked_sub(d).unwrap_or(now)
        }
    }

    pub async fn progress(&self) -> Progress {
        self.progress.lock().await.clone()
    }

    async fn save(&self, p: &Progress) {
        // The write ends with fsyncs (milliseconds on a busy disk): on a blocking thread, so
        // that the runtime's workers go on waking the agents waiting for this very grant.
        // The caller holds the progress lock across the await, which keeps saves in order.
        let (snapshot, dir) = (p.clone(), self.state_dir.clone());
        let saved = tokio::task::spawn_blocking(move || snapshot.save(&dir))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        if let Err(e) = saved {
            tracing::error!(path = %Progress::path(&self.state_dir).display(), error = %e, "saving the uplink progress");
        }
        let mut shown = self.shown();
        shown.acked = p.acked;
        shown.offset = p.offset;
        shown.cursor = p.cursor.clone();
    }

    /// Records a new acknowledged position.
    async fn set_acked(&self, pos: Position) {
        let mut p = self.progress.lock().await;
        p.acked = pos.seq;
        p.offset = pos.offset;
        self.save(&p).await;
    }

    /// Records the cursor of a decision event that was applied.
    async fn set_cursor(&self, cursor: String) {
        let mut p = self.progress.lock().await;
        if p.cursor != cursor {
            p.cursor = cursor;
            self.save(&p).await;
        }
    }

    /// Marks a grant as installed before it is written; false when it was already.
    async fn claim_grant(&self, grant_id: &str, expires: SystemTime) -> bool {
        let mut p = self.progress.lock().await;
        if p.was_installed(grant_id) {
            return false;
        }
        p.mark_installed(grant_id, expires);
        self.save(&p).await;
        true
    }

    fn policy_refused(&self, revision: &str) -> bool {
        self.refused_policy
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_deref()
            == Some(revision)
    }

    fn refuse_policy(&self, revision: &str) {
        *self
            .refused_policy
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(revision.to_owned());
    }
}

/// Runs the link forever: connect, register, then upload, follow decisions, poll the policy
/// and forward asks until something fails; wait (backoff) and start again.
pub async fn run(link: Arc<Link>, enforcer: Arc<dyn Enforcer>) {
    let mut backoff = Backoff::default();
    let mut log = StateLog::default();
    loop {
        let result = connection(&link, &enforcer, &mut backoff, &mut log).await;
        link.connected.store(false, Ordering::Relaxed);
        if let Err(e) = result {
            let detail = e.to_string();
            log.down(&link.config.server, &e.kind(), &detail);
            link.shown().last_error = Some(detail);
        }
        tokio::time::sleep(backoff.next_wait()).await;
    }
}

/// One connection, from connect to failure.
async fn connection(
    link: &Arc<Link>,
    enforcer: &Arc<dyn Enforcer>,
    backoff: &mut Backoff,
    log: &mut StateLog,
) -> Result<(), LinkError> {
    // The built-in rule follows the server's addresses (DNS may have changed).
    if let Ok((addrs, port)) = link.config.resolve().await {
        let e = enforcer.clone();
        let _ = tokio::task::spawn_blocking(move || e.server_addresses(addrs, port)).await;
    }
    let mut client = link.config.connect().await?;
    let e = enforcer.clone();
    let mut registration = tokio::task::spawn_blocking(move || e.registration())
        .await
        .map_err(|e| LinkError::Io(e.to_string()))?;
    if link.outage_reported.load(Ordering::Relaxed) {
        registration.previous_outage = None;
    }
    let reported = registration.previous_outage.is_some();
    let reg = tokio::time::timeout(REGISTER_TIMEOUT, client.register(registration))
        .await
        .map_err(|_| LinkError::Timeout("Register"))?
        .map_err(|s| LinkError::rpc("Register", s))?
        .into_inner();
    if reported {
        link.outage_reported.store(true, Ordering::Relaxed);
    }
    note_skew(link, reg.server_time.as_ref());
    // The built-in rule also covers the server's other listeners and its database.
    let (e, endpoints) = (enforcer.clone(), reg.endpoints.clone());
    let _ = tokio::task::spawn_blocking(move || e.server_endpoints(endpoints)).await;

    let saved = {
        let mut p = link.progress.lock().await;
        let old_cursor = p.cursor.clone();
        if p.server_forgot(reg.last_acked_sequence) {
            tracing::info!(
                cursor = %old_cursor,
                "the server's store is older than ours; following its decisions from the start"
            );
            link.save(&p).await;
        }
        Position {
            seq: p.acked,
            offset: p.offset,
        }
    };
    let (path, server_acked) = (link.event_log.clone(), reg.last_acked_sequence);
    let start = tokio::task::spawn_blocking(move || upload::resume(&path, saved, server_acked))
        .await
        .map_err(|e| LinkError::Io(e.to_string()))??;
    link.set_acked(start).await;

    backoff.reset();
    link.connected.store(true, Ordering::Relaxed);
    {
        let mut shown = link.shown();
        shown.host = reg.host.clone();
        shown.last_error = None;
    }
    log.up(&link.config.server, &reg.host);
    tracing::debug!(server_acked, resume_at = start.seq, "upload position");
    // Waiters learn at once that asks can reach the server now.
    link.table.touch();

    tokio::select! {
        r = upload::run(link, client.clone(), start) => r,
        r = decisions::run(link, enforcer, client.clone()) => r,
        r = policy_sync::run(link, enforcer, client.clone()) => r,
        r = evidence::run(enforcer, client.clone()) => r,
        r = forward::run(link, client) => r,
    }
}

fn note_skew(link: &Link, server_time: Option<&prost_types::Timestamp>) {
    let Some(server) = server_time.and_then(convert::system_time) else {
        return;
    };
    let now = SystemTime::now();
    let skew_ms = match server.duration_since(now) {
        Ok(ahead) => i64::try_from(ahead.as_millis()).unwrap_or(i64::MAX),
        Err(behind) => -i64::try_from(behind.duration().as_millis()).unwrap_or(i64::MAX),
    };
    link.skew_ms.store(skew_ms, Ordering::Relaxed);
    if skew_ms.unsigned_abs() > SKEW_WARNING.as_millis() as u64 {
        tracing::warn!(skew_ms, "this host's clock differs from the control plane's; grant lifetimes follow the server's clock");
    }
}
