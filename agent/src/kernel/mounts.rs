//! The pseudo filesystems the agent needs, mounted when a minimal boot left them out:
//! securityfs (the LSM list), bpffs (pins that outlive the daemon) and tracefs (tracepoint
//! ids for the fallback mode).

use std::ffi::CString;
use std::io;
use std::path::{Path, PathBuf};

use procfs::process::{MountInfo, Process};

/// securityfs mount point.
pub const SECURITYFS: &str = "/sys/kernel/security";
/// bpffs mount point.
pub const BPFFS: &str = "/sys/fs/bpf";
/// tracefs mount point since Linux 4.1.
pub const TRACEFS: &str = "/sys/kernel/tracing";
/// Where tracefs used to live: debugfs mounts it there by itself.
pub const DEBUG_TRACEFS: &str = "/sys/kernel/debug/tracing";
const DEBUGFS: &str = "/sys/kernel/debug";

/// What [`ensure_mounted`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mounts {
    /// Where tracefs is mounted.
    pub tracefs: PathBuf,
    /// The mount points this call mounted (empty when everything was already there).
    pub mounted: Vec<PathBuf>,
}

/// A pseudo filesystem could not be mounted.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("reading /proc/self/mountinfo: {0}")]
    Mountinfo(#[from] procfs::ProcError),
    #[error("mounting {fstype} on {}: {source}", target.display())]
    Mount {
        fstype: String,
        target: PathBuf,
        source: io::Error,
    },
}

/// The mount table of this process's mount namespace.
pub fn mount_table() -> Result<Vec<MountInfo>, procfs::ProcError> {
    Ok(Process::myself()?.mountinfo()?.0)
}

/// Mounts securityfs, bpffs and tracefs where they are missing. Idempotent: what is already
/// mounted (as seen in /proc/self/mountinfo) is left alone.
pub fn ensure_mounted() -> Result<Mounts, MountError> {
    let mut mounted = Vec::new();
    ensure("securityfs", SECURITYFS, None, &mut mounted)?;
    // Pins are the daemon's to touch only, as systemd mounts it.
    ensure("bpf", BPFFS, Some("mode=700"), &mut mounted)?;
    let tracefs = ensure_tracefs(&mut mounted)?;
    Ok(Mounts { tracefs, mounted })
}

fn ensure_tracefs(mounted: &mut Vec<PathBuf>) -> Result<PathBuf, MountError> {
    for at in [TRACEFS, DEBUG_TRACEFS] {
        if is_mounted("tracefs", at)? {
            return Ok(at.into());
        }
    }
    let first = if Path::new(TRACEFS).is_dir() {
        match ensure("tracefs", TRACEFS, None, mounted) {
            Ok(()) => return Ok(TRACEFS.into()),
            Err(e) => Some(e),
        }
    } else {
        None
    };
    // Old kernels, or a sysfs without the tracing directory: the debugfs location.
    let legacy = ensure("debugfs", DEBUGFS, None, mounted)
        .and_then(|()| ensure("tracefs", DEBUG_TRACEFS, None, mounted));
    match (legacy, first) {
        (Ok(()), _) => Ok(DEBUG_TRACEFS.into()),
        (Err(_), Some(first)) => Err(first),
        (Err(e), None) => Err(e),
    }
}

fn is_mounted(fstype: &str, at: &str) -> Result<bool, MountError> {
    Ok(mount_table()?
        .iter()
        .any(|m| m.fs_type == fstype && m.mount_point == Path::new(at)))
}

fn ensure(
    fstype: &str,
    at: &str,
    data: Option<&str>,
    mounted: &mut Vec<PathBuf>,
) -> Result<(), MountError> {
    if is_mounted(fstype, at)? {
        return Ok(());
    }
    match mount(fstype, at, data) {
        Ok(()) => {
            tracing::info!(fstype, at, "mounted");
            mounted.push(at.into());
            Ok(())
        }
        // Mounted meanwhile by someone else.
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => Ok(()),
        Err(source) => Err(MountError::Mount {
            fstype: fstype.into(),
            target: at.into(),
            source,
        }),
    }
}

fn mount(fstype: &str, at: &str, data: Option<&str>) -> io::Result<()> {
    let cstr =
        |s: &str| CString::new(s).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e));
    let (source, target, fs) = (cstr(fstype)?, cstr(at)?, cstr(fstype)?);
    let data = data.map(cstr).transpose()?;
    let data_ptr = data
        .as_ref()
        .map_or(std::ptr::null(), |d| d.as_ptr().cast::<libc::c_void>());
    let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC | libc::MS_RELATIME;
    // SAFETY: every pointer is a NUL-terminated string (or null for `data`) that outlives
    // the call; mount(2) does not keep them.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fs.as_ptr(),
            flags,
            data_ptr,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ensure_mounted_is_idempotent() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return eprintln!("SKIP: mounting needs root");
        }
        let first = ensure_mounted().expect("first call mounts");
        eprintln!("first call: {first:?}");
        let second = ensure_mounted().expect("second call");
        assert_eq!(
            second.mounted,
            Vec::<PathBuf>::new(),
            "nothing left to mount"
        );
        assert_eq!(second.tracefs, first.tracefs);
        for (fstype, at) in [("securityfs", SECURITYFS), ("bpf", BPFFS)] {
            assert!(
                is_mounted(fstype, at).expect("mountinfo"),
                "{fstype} on {at}"
            );
        }
        assert!(first.tracefs.join("events").is_dir(), "tracefs has events/");
    }
}
