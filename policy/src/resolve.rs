//! File identities: rules name paths, the kernel compares the (device, inode) of the file
//! really executed, so a symlink, a hard link or a bind mount of a named binary is the same
//! binary; a copy that an agent wrote is recognised by its head (`agent_common::identity`).

use std::{fmt, io::Read as _, os::unix::fs::MetadataExt, path::Path};

use agent_common::identity::HEAD_LEN;

/// Identity of a file as the kernel reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId {
    /// Kernel device number: `major << 20 | minor` (not userspace `st_dev`).
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    /// Identity from a userspace `stat`: converts `st_dev` to the kernel encoding.
    pub fn from_stat(st_dev: u64, ino: u64) -> Self {
        let (major, minor) = (
            libc::major(st_dev as libc::dev_t),
            libc::minor(st_dev as libc::dev_t),
        );
        Self {
            dev: (u64::from(major) << 20) | u64::from(minor),
            ino,
        }
    }

    /// Device major number.
    pub fn major(&self) -> u64 {
        self.dev >> 20
    }

    /// Device minor number.
    pub fn minor(&self) -> u64 {
        self.dev & ((1 << 20) - 1)
    }
}

/// `major:minor ino N`, as in event records.
impl fmt::Display for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{} ino {}", self.major(), self.minor(), self.ino)
    }
}

/// Finds the identity of the file a rule path names.
pub trait Resolver {
    /// None when the path names no file here.
    fn identity(&self, path: &Path) -> Option<FileId>;

    /// The file's head as the kernel reads it before choosing a loader (its first
    /// `HEAD_LEN` bytes, zeros after a shorter file); None when it cannot be read.
    fn head(&self, _path: &Path) -> Option<[u8; HEAD_LEN]> {
        None
    }
}

/// Resolves paths on this host: `stat` following symlinks, regular files only.
#[derive(Clone, Copy, Debug, Default)]
pub struct HostResolver;

impl Resolver for HostResolver {
    fn identity(&self, path: &Path) -> Option<FileId> {
        let md = std::fs::metadata(path).ok()?;
        md.is_file().then(|| FileId::from_stat(md.dev(), md.ino()))
    }

    fn head(&self, path: &Path) -> Option<[u8; HEAD_LEN]> {
        let mut head = [0u8; HEAD_LEN];
        let mut file = std::fs::File::open(path).ok()?;
        let mut filled = 0;
        while filled < HEAD_LEN {
            match file.read(&mut head[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
        Some(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_device_encoding() {
        // glibc encodes 259:3 (an NVMe partition) as 0x10300; 8:17 as 0x811.
        let id = FileId::from_stat(libc::makedev(259, 3), 7);
        assert_eq!(id.dev, (259 << 20) | 3);
        assert_eq!((id.major(), id.minor()), (259, 3));
        assert_eq!(FileId::from_stat(0x811, 1).dev, (8 << 20) | 17);
        assert_eq!(id.to_string(), "259:3 ino 7");
    }

    #[test]
    fn host_resolver_follows_symlinks() {
        let dir = std::env::temp_dir().join(format!("policy-resolve-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("bin");
        let link = dir.join("link");
        std::fs::write(&file, b"x").expect("write file");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&file, &link).expect("symlink");
        let r = HostResolver;
        let id = r.identity(&file).expect("file exists");
        assert_eq!(r.identity(&link), Some(id));
        assert_eq!(r.identity(&dir), None, "directories are not binaries");
        assert_eq!(r.identity(&dir.join("missing")), None);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
