//! The kernel programs: loading them with this kernel's structure offsets, attaching them for
//! the chosen mode, and pinning everything so that enforcement outlives the daemon.

mod attach;
mod guards;
pub mod marks;
mod pins;
mod verify;

use std::path::{Path, PathBuf};

use agent_common::offsets::Offsets;
use aya::{Ebpf, EbpfLoader};
use thiserror::Error;

pub use attach::{attach, Attached};
pub use guards::{add_identities, protect, DelegatorKey, SYSCALL_TRACEPOINTS};
pub use pins::unload;

/// The object built from `agent-ebpf` by build.rs.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/agent-ebpf"));

#[derive(Debug, Error)]
pub enum LoadError {
    #[error("this countersign-agent was built without its kernel programs (AYA_BUILD_SKIP)")]
    NoObject,
    #[error("creating the pin directory {path}: {source}")]
    PinDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("loading the kernel programs: {0}")]
    Load(#[from] aya::EbpfError),
    #[error("program {program}: {source}")]
    Program {
        program: &'static str,
        source: aya::programs::ProgramError,
    },
    #[error("pinning {what}: {source}")]
    Pin {
        what: String,
        source: aya::pin::PinError,
    },
    #[error("map {0} is missing from the object")]
    MissingMap(&'static str),
    #[error("map {name}: {source}")]
    Map {
        name: &'static str,
        source: aya::maps::MapError,
    },
    #[error("{0}")]
    Other(String),
}

/// The loaded object: maps (pinned under `<bpffs>/maps`) and programs.
pub struct Loaded {
    pub ebpf: Ebpf,
    pub bpffs: PathBuf,
    /// The kernel programs' log (aya-log); see [`forward_logs`]. Dropping it closes its map.
    pub logger: Option<aya_log::EbpfLogger<&'static dyn log::Log>>,
}

/// Loads the object, reusing the maps a previous daemon pinned (its policy, grants and
/// undelivered events) so that a restart opens no gap.
pub fn load(bpffs: &Path, offsets: &Offsets) -> Result<Loaded, LoadError> {
    if OBJECT.is_empty() {
        return Err(LoadError::NoObject);
    }
    let maps_dir = pins::maps_dir(bpffs);
    std::fs::create_dir_all(&maps_dir).map_err(|source| LoadError::PinDir {
        path: maps_dir.clone(),
        source,
    })?;
    let mut ebpf = EbpfLoader::new()
        .override_global(agent_common::names::OFFSETS, offsets, true)
        .default_map_pin_directory(&maps_dir)
        .load(OBJECT)?;
    let logger = match aya_log::EbpfLogger::init(&mut ebpf) {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::debug!(error = %e, "no eBPF log map");
            None
        }
    };
    Ok(Loaded {
        ebpf,
        bpffs: bpffs.to_path_buf(),
        logger,
    })
}

/// Forwards the kernel programs' log records (aya-log) into `tracing`, as they come.
pub async fn forward_logs(
    logger: aya_log::EbpfLogger<&'static dyn log::Log>,
) -> std::io::Result<()> {
    use tokio::io::{unix::AsyncFd, Interest};
    // SAFETY: the logger owns its fd for as long as the AsyncFd owns the logger.
    let mut fd = unsafe { AsyncFd::register_with_interest(logger, Interest::READABLE) }
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    loop {
        let mut guard = fd.readable_mut().await?;
        guard.get_inner_mut().flush();
        guard.clear_ready();
    }
}
