//! `countersign-agent run`: the daemon.
//!
//! Start-up order keeps enforcement continuous across restarts: the maps a previous daemon
//! pinned are reused, the new programs are attached before the old links are dropped, and the
//! new policy is installed as a new generation while the old one is in force.

mod agent_host;
pub mod builtin;
mod delegators;
mod enforcer;
mod evidence;
mod guarded;
mod handler;
mod install;
mod loaders;
mod local_ssh;
mod names;
pub mod outage;
pub mod policy_source;
pub mod protections;
mod root_agents;
pub use root_agents::RootAgents;
mod sink;

use std::{
    path::PathBuf,
    sync::{atomic::AtomicU64, Arc, Mutex, RwLock},
};

use anyhow::{Context, Result};
use tokio::signal::unix::{signal, SignalKind};

use crate::{
    admin_socket::{
        protocol::{Protection, ProtectionState},
        server,
    },
    agent_socket::{self, AgentApi},
    approvals::{Bindings, Refusals, RequestTable},
    cgroup::Hierarchy,
    ebpf::{self, Attached},
    events::{log::EventLog, reader},
    kernel::{btf, mode, mounts},
    maps::Maps,
    session::Registry,
    uplink::{self, Link},
};
use builtin::ControlPlaneRule;
pub use names::{GenNames, Generations, GroupInfo};
use policy_source::PolicyState;

/// Options of `run`.
#[derive(Clone, Debug)]
pub struct Options {
    pub policy: Vec<PathBuf>,
    pub mode: mode::ModeChoice,
    pub state_dir: PathBuf,
    pub run_dir: PathBuf,
    pub bpffs: PathBuf,
    pub follow: bool,
    /// Whether root sessions may start in fallback mode.
    pub root_agents: RootAgents,
    /// The control plane, when the daemon has one (`--server`).
    pub server: Option<uplink::Config>,
}

impl Options {
    pub fn socket(&self) -> PathBuf {
        self.run_dir.join("agent.sock")
    }
    /// The agent socket (`agent-api.sock`), open to processes of agent sessions.
    pub fn agent_socket(&self) -> PathBuf {
        self.run_dir.join(agent_socket::protocol::SOCKET_NAME)
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
    /// The policy in force and its source.
    policy: Mutex<PolicyState>,
    /// With `--server`: where the control plane is (the built-in rule).
    control_plane: Option<Mutex<ControlPlaneRule>>,
    sessions: Arc<Registry>,
    link: Option<Arc<Link>>,
    /// The exact operations grant orders may name.
    bindings: Arc<Bindings>,
    /// The gap before this daemon (None for the first one); told to the control plane at
    /// every registration of this daemon.
    outage: Option<outage::Outage>,
}

/// The kernel programs, loaded and attached by [`prepare`].
pub struct Prepared {
    hierarchy: Hierarchy,
    loaded: ebpf::Loaded,
    attached: Attached,
}

/// Loads and attaches the kernel programs. Call it while the daemon is still one thread,
/// before the async runtime exists: attaching the first syscall tracepoint makes the kernel
/// flag every thread for traced syscall entry and patch the tracepoint's code while other
/// CPUs may be running it, so no thread of ours should be entering a system call meanwhile
/// (docs/testing.md, "A VM that hangs").
pub fn prepare(opts: &Options) -> Result<Prepared> {
    // The event log holds every session's argv: the state directory is the daemon's alone.
    let tightened = countersign_api::private_dir::ensure(&opts.state_dir).with_context(|| {
        format!(
            "making the state directory {} (mode 0700)",
            opts.state_dir.display()
        )
    })?;
    if let Some(was) = tightened {
        tracing::warn!(dir = %opts.state_dir.display(), was = format!("{was:o}"), "the state directory was open to others: made it 0700");
    }
    let mounted = mounts::ensure_mounted().context("mounting securityfs, bpffs and tracefs")?;
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
    let guarded_paths = guarded::paths(opts);
    let loader_paths = loaders::paths();
    let started = std::time::Instant::now();
    let mut loaded = ebpf::load(&opts.bpffs, &offsets)?;
    ebpf::protect(
        &mut loaded,
        &guarded::identities(&guarded_paths, &guarded::by_stat),
        &delegators::keys(delegators::BUILT_IN),
        &loaders::identities(&loader_paths, &guarded::by_stat),
    )?;
    ebpf::marks::set_threshold(&mut loaded)?;
    if ebpf::marks::lost(&loaded) {
        tracing::warn!(
            "sessions wrote so many files that marks may have been evicted: every exec of a \
             file no rule names is looked up by content (copies made outside the sessions \
             included) until the pinned maps are removed (countersign-agent unload)"
        );
    }
    let lsm_optional = matches!(opts.mode, mode::ModeChoice::Auto);
    let attached = ebpf::attach(
        &mut loaded,
        wanted,
        lsm_optional,
        report.reason.clone(),
        hierarchy.root(),
        &mounted.tracefs,
    )?;
    tracing::info!(
        programs = attached.programs.len(),
        ms = started.elapsed().as_millis() as u64,
        "kernel programs loaded and attached"
    );
    guards_by_kernel(&mut loaded, &guarded_paths, &loader_paths)?;
    Ok(Prepared {
        hierarchy,
        loaded,
        attached,
    })
}

/// Adds the kernel's identities of the guarded files and the loaders (written with `stat()`'s
/// before the programs that can answer attached): on a btrfs subvolume or an overlayfs they
/// differ, and with `stat()`'s alone those guards would never match.
fn guards_by_kernel(
    loaded: &mut ebpf::Loaded,
    guarded_paths: &[(std::path::PathBuf, u32)],
    loader_paths: &[std::path::PathBuf],
) -> Result<()> {
    let (files, loader_ids) = {
        let map = loaded
            .ebpf
            .map_mut(agent_common::names::IDENTIFY)
            .context("the IDENTIFY map")?;
        let mut identify = aya::maps::Array::try_from(map).context("the IDENTIFY map")?;
        let resolver = crate::kernel::identity::KernelResolver::new(&mut identify);
        let by_kernel = |p: &std::path::Path| resolver.existing(p);
        (
            guarded::identities(guarded_paths, &by_kernel),
            loaders::identities(loader_paths, &by_kernel),
        )
    };
    ebpf::add_identities(loaded, &files, &loader_ids)?;
    Ok(())
}

/// Runs the daemon on the programs [`prepare`] attached, until SIGTERM or SIGINT.
pub async fn run(opts: Options, prepared: Prepared) -> Result<()> {
    let Prepared {
        hierarchy,
        mut loaded,
        attached,
    } = prepared;
    if let Some(logger) = loaded.logger.take() {
        tokio::spawn(ebpf::forward_logs(logger));
    }
    let mut maps = Maps::take(&mut loaded.ebpf)?;
    let events = maps.events.take().context("event ring buffer")?;
    let lost_at_start = events_lost(&maps);
    let previous = outage::previous(&opts.state_dir, lost_at_start);
    if let Some(o) = &previous {
        outage::log(o);
    }
    let heartbeat = outage::Writer::new(&opts.state_dir);
    heartbeat.beat(false, lost_at_start);

    let generations = Arc::new(RwLock::new(Generations::load(
        &opts.state_dir,
        maps.read_state().active,
    )));
    let log = EventLog::open(&opts.event_log(), opts.follow)
        .with_context(|| format!("opening the event log {}", opts.event_log().display()))?;
    let control_plane = match &opts.server {
        Some(config) => Some(Mutex::new(resolve_control_plane(config).await)),
        None => None,
    };
    let sessions = Arc::new(Registry::new(&opts.state_dir));
    let table = Arc::new(RequestTable::new());
    let refusals = Arc::new(Refusals::new());
    let bindings_file = opts.state_dir.join("bindings.jsonl");
    let bindings = Arc::new(Bindings::open(&bindings_file).unwrap_or_else(|e| {
        tracing::error!(path = %bindings_file.display(), error = %e, "cannot read the bindings file: operations seen before this start must be raised again to be granted");
        Bindings::new()
    }));
    let link = opts.server.as_ref().map(|config| {
        Arc::new(Link::new(
            config.clone(),
            opts.state_dir.clone(),
            opts.event_log(),
            table.clone(),
            sessions.clone(),
        ))
    });
    let source = policy_source::initial(&opts.state_dir, &opts.policy, opts.server.is_some());
    let daemon = Arc::new(Daemon {
        kernel: mode::kernel_release(),
        opts: opts.clone(),
        hierarchy: hierarchy.clone(),
        attached,
        maps: Mutex::new(maps),
        generations: generations.clone(),
        events_logged: Arc::new(AtomicU64::new(0)),
        policy: Mutex::new(PolicyState {
            source,
            policy: None,
            base: None,
        }),
        control_plane,
        sessions,
        link: link.clone(),
        bindings: bindings.clone(),
        outage: previous,
    });
    let installed = daemon.reload().context("installing the policy")?;
    for w in &installed.1 {
        tracing::warn!(warning = %w, "policy");
    }

    let mut sink = sink::EventSink::new(log, generations, hierarchy, daemon.events_logged.clone());
    sink.refusals = Some(refusals.clone());
    sink.bindings = Some(bindings.clone());
    sink.appended = link.as_ref().map(|l| l.appended.clone());
    let reader = tokio::spawn(async move { reader::run(events, &mut sink).await });
    let api = Arc::new(AgentApi {
        host: daemon.clone(),
        table,
        refusals,
        bindings,
        link: link.clone(),
    });
    let agent_listener = agent_socket::server::bind(&opts.agent_socket())
        .with_context(|| format!("binding {}", opts.agent_socket().display()))?;
    let agent_server = tokio::spawn(agent_socket::server::serve(agent_listener, api));
    let uplink_task = link.map(|l| {
        let enforcer: Arc<dyn uplink::Enforcer> = daemon.clone();
        tokio::spawn(uplink::run(l, enforcer))
    });
    // Last: a `status` that answers means everything above is in place.
    let listener = server::bind(&opts.socket())
        .with_context(|| format!("binding {}", opts.socket().display()))?;
    let server = tokio::spawn(server::serve(listener, daemon.clone()));

    let mode_name = daemon.attached.mode.as_str();
    tracing::info!(mode = mode_name, reason = %daemon.attached.reason, socket = %opts.socket().display(), agent_socket = %opts.agent_socket().display(), event_log = %opts.event_log().display(), server = opts.server.as_ref().map(|c| c.server.as_str()), "enforcing");
    eprintln!(
        "countersign-agent: enforcing in {mode_name} mode ({})",
        daemon.attached.reason
    );
    let groups = {
        let g = daemon.generations.read().unwrap_or_else(|p| p.into_inner());
        g.current().map(|n| n.groups.clone()).unwrap_or_default()
    };
    for p in daemon.protections(&groups) {
        match p.state {
            ProtectionState::Enforced => {}
            ProtectionState::Detected => tracing::warn!(
                protection = %p.name,
                "detected, not prevented: {}",
                p.how
            ),
            ProtectionState::Absent => {
                tracing::warn!(protection = %p.name, "not protected: {}", p.how)
            }
        }
    }

    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut sweep = tokio::time::interval(std::time::Duration::from_secs(30));
    let mut beat = tokio::time::interval(outage::INTERVAL);
    let lost = || events_lost(&daemon.maps.lock().unwrap_or_else(|p| p.into_inner()));
    loop {
        tokio::select! {
            _ = beat.tick() => heartbeat.beat(false, lost()),
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
    agent_server.abort();
    if let Some(t) = uplink_task {
        t.abort();
    }
    reader.abort();
    let _ = std::fs::remove_file(opts.socket());
    let _ = std::fs::remove_file(opts.agent_socket());
    heartbeat.beat(true, lost());
    tracing::info!(
        "stopping; the pinned programs keep enforcing (`countersign-agent unload` removes them)"
    );
    Ok(())
}

/// The kernel's count of events that did not fit the ring buffer.
fn events_lost(maps: &Maps) -> u64 {
    let i = agent_common::policy::stats::EVENTS_LOST as usize;
    maps.counters().get(i).copied().unwrap_or(0)
}

impl Daemon {
    /// The exact operation `id` names, as this daemon saw it refused or asked for.
    fn binding(&self, id: &str) -> Result<agent_common::binding::Binding> {
        if !agent_common::binding::is_id(id) {
            anyhow::bail!(
                "{id:?} is not an operation id (32 hex digits, as events and requests show it)"
            );
        }
        self.bindings.get(id).ok_or_else(|| {
            anyhow::anyhow!(
                "operation {id} is unknown to this daemon: only an operation it refused pending \
                 approval, or was asked about, can be granted (after a daemon restart, retry the \
                 operation to raise it again)"
            )
        })
    }

    /// What this daemon protects against, with the agent groups `groups` in force.
    fn protections(&self, groups: &[names::GroupInfo]) -> Vec<Protection> {
        protections::of(
            self.attached.mode,
            self.opts.server.is_some(),
            &self.attached.guards,
            self.opts.root_agents,
            groups,
        )
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

/// The control plane's addresses at start (a name that does not resolve yet is retried by the
/// uplink, which re-installs the policy once it does).
async fn resolve_control_plane(config: &uplink::Config) -> ControlPlaneRule {
    match config.resolve().await {
        Ok((addrs, port)) => {
            tracing::info!(server = %config.server, addresses = ?addrs, port, rule = builtin::RULE_ID, "agents are denied the control plane");
            ControlPlaneRule {
                addrs,
                port,
                endpoints: Vec::new(),
            }
        }
        Err(e) => {
            tracing::warn!(server = %config.server, error = %e, rule = builtin::RULE_ID, "cannot resolve the control plane yet: the built-in rule waits for its addresses");
            ControlPlaneRule {
                addrs: Vec::new(),
                port: config.host_port().map(|(_, p)| p).unwrap_or(443),
                endpoints: Vec::new(),
            }
        }
    }
}
