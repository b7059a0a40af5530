//! Where pins live on bpffs, and how a new daemon takes over the links of an old one.
//!
//! `<bpffs>/maps/NAME`: the maps (policy, grants, events). `<bpffs>/links/PROGRAM`: the links
//! that keep the programs attached while no daemon runs.

use std::{
    fs, io,
    path::{Path, PathBuf},
    thread,
    time::{Duration, Instant},
};

use aya::programs::links::{FdLink, PinnedLink};

use super::LoadError;

pub fn maps_dir(bpffs: &Path) -> PathBuf {
    bpffs.join("maps")
}

pub fn links_dir(bpffs: &Path) -> PathBuf {
    bpffs.join("links")
}

/// Pins `link` at `<bpffs>/links/<name>`, replacing (and so detaching) the link a previous
/// daemon pinned there. The new link is attached before the old one goes: no gap.
pub fn replace(bpffs: &Path, name: &str, link: FdLink) -> Result<(), LoadError> {
    let dir = links_dir(bpffs);
    fs::create_dir_all(&dir).map_err(|source| LoadError::PinDir {
        path: dir.clone(),
        source,
    })?;
    let path = dir.join(name);
    if path.exists() {
        // The old link may stay attached a moment after this (see `unload`); the new one is
        // attached already, so that overlap is harmless.
        detach_pinned(&path);
    }
    link.pin(&path).map_err(|source| LoadError::Pin {
        what: path.display().to_string(),
        source,
    })?;
    Ok(())
}

/// Names of the links pinned now.
pub fn pinned_links(bpffs: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(links_dir(bpffs))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    v.sort();
    v
}

/// Removes pinned links that the current daemon did not re-pin (e.g. the LSM link after a
/// switch to fallback mode).
pub fn drop_stale(bpffs: &Path, keep: &[String]) {
    for name in pinned_links(bpffs) {
        if !keep.contains(&name) {
            detach_pinned(&links_dir(bpffs).join(&name));
        }
    }
}

/// Unpins the link at `path` and closes it; returns the id of its program when the kernel
/// told it.
fn detach_pinned(path: &Path) -> Option<u32> {
    match PinnedLink::from_pin(path) {
        Ok(old) => match old.unpin() {
            Ok(fd) => fd.info().ok().map(|info| info.program_id()),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "unpinning old link");
                None
            }
        },
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "opening old pinned link; removing it");
            let _ = fs::remove_file(path);
            None
        }
    }
}

/// How long `unload` waits for the kernel to let go of the programs.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(10);

/// Detaches every pinned program and removes the pinned maps: enforcement stops, and has
/// stopped when this returns. Closing our file descriptor is not the end of a link: the pin
/// holds a reference too, and kernels before the fix "bpf: Avoid RCU context warning when
/// unpinning htab with internal structs" (not in 5.10) drop it from an RCU callback and a
/// workqueue after the unlink returns — the program stays attached for a moment. So this
/// waits until the kernel has freed the programs of the links it closed.
pub fn unload(bpffs: &Path) -> io::Result<()> {
    let mut programs = Vec::new();
    for name in pinned_links(bpffs) {
        programs.extend(detach_pinned(&links_dir(bpffs).join(name)));
    }
    if bpffs.exists() {
        fs::remove_dir_all(bpffs)?;
    }
    wait_released(&programs, RELEASE_TIMEOUT)
}

/// Waits until none of `programs` (ids) is loaded any more.
fn wait_released(programs: &[u32], timeout: Duration) -> io::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let left: Vec<u32> = aya::programs::loaded_programs()
            .filter_map(Result::ok)
            .map(|p| p.id())
            .filter(|id| programs.contains(id))
            .collect();
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(io::Error::other(format!(
                "the kernel still holds programs {left:?} {}s after their links were removed \
                 (is a countersign-agent still running on these pins?)",
                timeout.as_secs()
            )));
        }
        thread::sleep(Duration::from_millis(20));
    }
}
