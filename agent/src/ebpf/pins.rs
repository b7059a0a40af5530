//! Where pins live on bpffs, and how a new daemon takes over the links of an old one.
//!
//! `<bpffs>/maps/NAME`: the maps (policy, grants, events). `<bpffs>/links/PROGRAM`: the links
//! that keep the programs attached while no daemon runs.

use std::{
    fs, io,
    path::{Path, PathBuf},
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

fn detach_pinned(path: &Path) {
    match PinnedLink::from_pin(path) {
        Ok(old) => match old.unpin() {
            Ok(fd) => drop(fd),
            Err(e) => tracing::warn!(path = %path.display(), error = %e, "unpinning old link"),
        },
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "opening old pinned link; removing it");
            let _ = fs::remove_file(path);
        }
    }
}

/// Detaches every pinned program and removes the pinned maps: enforcement stops.
pub fn unload(bpffs: &Path) -> io::Result<()> {
    for name in pinned_links(bpffs) {
        detach_pinned(&links_dir(bpffs).join(name));
    }
    if bpffs.exists() {
        fs::remove_dir_all(bpffs)?;
    }
    Ok(())
}
