//! `countersign-agent run`: the daemon.
//!
//! Start-up order keeps enforcement continuous across restarts: the maps a previous daemon
//! pinned are reused, the new programs are attached before the old links are dropped, and the
//! new policy is installed as a new generation while the old one is in force.

mod handler;
mod install;
mod names;
mod sink;

use std::{
    path::PathBuf,
    sync::{atomic::AtomicU64, Arc, Mutex, RwLock},
};

use agent_common::Mode;
use anyhow::{Context, Result};
use tokio::signal::unix::{signal, SignalKind};

use crate::{
    cgroup::Hierarchy,
    ebpf::{self, Attached},
    events::{log::EventLog, reader},
    kernel::{btf, mode, mounts},
    maps::Maps,
    socket::server,
};
pub use names::{GenNames, Generations, GroupInfo};

/// Options of `run`.
#[derive(Clone, Debug)]
pub struct Options {
    pub policy: Vec<PathBuf>,
    pub mode: mode::ModeChoice,
    pub state_dir: PathBuf,
    pub run_dir: PathBuf,
    pub bpffs: PathBuf,
    pub follow: bool,
}

impl Options {
    pub fn socket(&self) -> PathBuf {
        self.run_dir.join("agent.sock")
    }
    pub fn event_log(&self) -> PathBuf {
        self.state_dir.join("events.jsonl")
    }
}

/// The running daemon, shared by the socket handlers and the signal loop.
pub struct Daemon {
    opts: Options,
    hierarchy: Hierarchy,
    attached: Attached,
    kernel: String,
    maps: Mutex<Maps>,
    generations: Arc<RwLock<Generations>>,
    events_logged: Arc<AtomicU64>,
}

pub async fn run(opts: Options) -> Result<()> {
    mounts::ensure_mounted().context("mounting securityfs, bpffs and tracefs")?;
    if let Err(e) = crate::kernel::raise_memlock() {
        // Kernels since 5.11 account BPF memory to the cgroup instead; on older ones the map
        // creation below fails with a clear error if the limit is too low.
        tracing::warn!(error = %e, "could not raise RLIMIT_MEMLOCK");
    }
    let report = mode::detect();
    let wanted = mode::choose(opts.mode, &report)?;
    let btf = btf::Btf::from_sys().context("reading the kernel's BTF")?;
    let offsets =
        btf::resolve_offsets(&btf).context("resolving kernel structure offsets from BTF")?;
    let hierarchy = Hierarchy::discover()?;
    let mut loaded = ebpf::load(&opts.bpffs, &offsets)?;
    let lsm_optional = matches!(opts.mode, mode::ModeChoice::Auto);
    let attached = ebpf::attach(
        &mut loaded,
        wanted,
        lsm_optional,
        report.reason.clone(),
        hierarchy.root(),
    )?;
    if let Some(logger) = loaded.logger.take() {
        tokio::spawn(ebpf::forward_logs(logger));
    }
    let mut maps = Maps::take(&mut loaded.ebpf)?;
    let events = maps.events.take().context("event ring buffer")?;

    let generations = Arc::new(RwLock::new(Generations::load(
        &opts.state_dir,
        maps.read_state().active,
    )));
    let log = EventLog::open(&opts.event_log(), opts.follow)
        .with_context(|| format!("opening the event log {}", opts.event_log().display()))?;
    let daemon = Arc::new(Daemon {
        kernel: mode::kernel_release(),
        opts: opts.clone(),
        hierarchy: hierarchy.clone(),
        attached,
        maps: Mutex::new(maps),
        generations: generations.clone(),
        events_logged: Arc::new(AtomicU64::new(0)),
    });
    let installed = daemon.reload().context("installing the policy")?;
    for w in &installed.1 {
        tracing::warn!(warning = %w, "policy");
    }

    let mut sink = sink::EventSink::new(log, generations, hierarchy, daemon.events_logged.clone());
    let reader = tokio::spawn(async move { reader::run(events, &mut sink).await });
    let listener = server::bind(&opts.socket())
        .with_context(|| format!("binding {}", opts.socket().display()))?;
    let server = tokio::spawn(server::serve(listener, daemon.clone()));

    let mode_name = ebpf::mode_name(daemon.attached.mode);
    tracing::info!(mode = mode_name, reason = %daemon.attached.reason, socket = %opts.socket().display(), event_log = %opts.event_log().display(), "enforcing");
    eprintln!(
        "countersign-agent: enforcing in {mode_name} mode ({})",
        daemon.attached.reason
    );

    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut sweep = tokio::time::interval(std::time::Duration::from_secs(30));
    loop {
        tokio::select! {
            _ = hup.recv() => match daemon.reload() {
                Ok((g, _)) => tracing::info!(generation = g, "policy reloaded"),
                Err(e) => tracing::error!(error = %format!("{e:#}"), "reload refused; the previous policy stays in force"),
            },
            _ = sweep.tick() => daemon.sweep_grants(),
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    server.abort();
    reader.abort();
    let _ = std::fs::remove_file(opts.socket());
    tracing::info!(
        "stopping; the pinned programs keep enforcing (`countersign-agent unload` removes them)"
    );
    Ok(())
}

impl Daemon {
    /// Re-reads the policy files and installs them as a new generation.
    pub fn reload(&self) -> Result<(u32, Vec<String>)> {
        let mut maps = self.maps.lock().unwrap_or_else(|p| p.into_inner());
        let mode: Mode = self.attached.mode;
        let i = install::install(&mut maps, &self.hierarchy, &self.opts.policy, mode)?;
        if let Err(e) = Generations::save(&self.opts.state_dir, i.generation, &i.names) {
            tracing::warn!(error = %e, "recording the names of the new policy generation");
        }
        let mut g = self.generations.write().unwrap_or_else(|p| p.into_inner());
        g.by_generation[i.generation as usize] = Some(i.names);
        g.active = i.generation;
        Ok((i.generation, i.warnings))
    }

    fn sweep_grants(&self) {
        let mut maps = self.maps.lock().unwrap_or_else(|p| p.into_inner());
        match crate::grants::sweep(&mut maps) {
            Ok(0) => {}
            Ok(n) => tracing::debug!(expired = n, "grants swept"),
            Err(e) => tracing::warn!(error = %e, "sweeping grants"),
        }
    }
}
