//! File identities as the kernel programs see them. Rules name paths; the programs compare the
//! `(s_dev, i_ino)` of the file's inode. `stat()` usually reports the same, but not always: a
//! btrfs subvolume reports its own anonymous device, and overlayfs with layers on different
//! file systems reports a layer's. Taking `stat()`'s word there would make every rule on such a
//! file silently never match. So the daemon asks the kernel: it opens the file and the program
//! that sees the open (`file_open`, or `mark_written` in fallback mode) answers through the
//! `IDENTIFY` map (`agent_common::identity::Identify`).

use std::{borrow::BorrowMut, cell::RefCell, fs::File, os::unix::fs::MetadataExt as _, path::Path};

use agent_common::identity::{Identify, HEAD_LEN};
use aya::maps::{Array, MapData};
use policy::{FileId, HostResolver, Resolver};

/// A [`Resolver`] that asks the kernel. Paths the kernel cannot be asked about (no program
/// answered: the hook is not attached) are resolved with `stat()` and said in the log.
pub struct KernelResolver<'a, T: BorrowMut<MapData> = MapData> {
    map: RefCell<&'a mut Array<T, Identify>>,
}

impl<'a, T: BorrowMut<MapData>> KernelResolver<'a, T> {
    pub fn new(map: &'a mut Array<T, Identify>) -> Self {
        Self {
            map: RefCell::new(map),
        }
    }

    /// The kernel's identity of whatever `path` names (symlinks followed): a file, a
    /// directory; None when nothing is there.
    pub fn existing(&self, path: &Path) -> Option<FileId> {
        let md = std::fs::metadata(path).ok()?;
        if !md.is_file() && !md.is_dir() {
            // Opening a FIFO could block, a device do anything: stat()'s word.
            return Some(FileId::from_stat(md.dev(), md.ino()));
        }
        Some(self.seen(path, &md))
    }

    /// The kernel's identity of the regular file `path` names (symlinks followed), or why
    /// there is none.
    pub fn regular_file(&self, path: &Path) -> Result<FileId, String> {
        let md = std::fs::metadata(path).map_err(|e| e.to_string())?;
        if !md.is_file() {
            return Err("not a regular file".into());
        }
        Ok(self.seen(path, &md))
    }

    /// The kernel's identity of `path`, whose metadata is `md`: the kernel's answer, else
    /// `stat()`'s (said in the log).
    fn seen(&self, path: &Path, md: &std::fs::Metadata) -> FileId {
        let stat = FileId::from_stat(md.dev(), md.ino());
        let Some(seen) = self.ask(path) else {
            tracing::warn!(
                path = %path.display(),
                "the kernel did not answer for this file's identity: using stat()'s, which \
                 differs from the kernel's on btrfs subvolumes and some overlayfs mounts"
            );
            return stat;
        };
        if seen != stat {
            tracing::info!(
                path = %path.display(),
                kernel = %seen,
                stat = %stat,
                "the kernel knows this file by another identity than stat() reports \
                 (btrfs subvolume or overlayfs): rules use the kernel's"
            );
        }
        seen
    }

    /// Opens `path` with this thread's id in `IDENTIFY`; the answer, if a program gave one.
    fn ask(&self, path: &Path) -> Option<FileId> {
        let mut map = self.map.borrow_mut();
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() } as u32;
        let question = Identify {
            tid,
            ..Identify::default()
        };
        map.set(0, question, 0).ok()?;
        let opened = File::open(path);
        let answer = map.get(&0, 0);
        let _ = map.set(0, Identify::default(), 0);
        drop(opened.ok()?);
        let a = answer.ok()?;
        (a.tid == tid && (a.dev, a.ino) != (0, 0)).then_some(FileId {
            dev: a.dev,
            ino: a.ino,
        })
    }
}

impl<T: BorrowMut<MapData>> Resolver for KernelResolver<'_, T> {
    fn identity(&self, path: &Path) -> Option<FileId> {
        self.regular_file(path).ok()
    }

    fn head(&self, path: &Path) -> Option<[u8; HEAD_LEN]> {
        HostResolver.head(path)
    }
}
