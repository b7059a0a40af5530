//! A minimal writer of the cpio "newc" format, the one the kernel unpacks as initramfs.
//! Writing it here (instead of running `cpio`) lets an unprivileged build create
//! `/dev/console` and root-owned files.

use std::io::{self, Write};

/// File type bits of `st_mode`.
const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;

/// One archive member. Paths are relative to the root ("bin/sh", not "/bin/sh").
pub enum Entry {
    /// A directory with permission bits.
    Dir { mode: u32 },
    /// A regular file with permission bits and content.
    File { mode: u32, data: Vec<u8> },
    /// A symbolic link to `target`.
    Symlink { target: String },
    /// A character device node.
    CharDev { mode: u32, major: u32, minor: u32 },
}

/// Streams entries into a newc archive; [`Writer::finish`] appends the trailer.
pub struct Writer<W: Write> {
    out: W,
    written: usize,
    ino: u32,
}

impl<W: Write> Writer<W> {
    /// Starts an archive written to `out`.
    pub fn new(out: W) -> Self {
        Self {
            out,
            written: 0,
            ino: 1,
        }
    }

    /// Appends `entry` at `path`; owner is root.
    pub fn add(&mut self, path: &str, entry: &Entry) -> io::Result<()> {
        let (mode, data, rdev): (u32, &[u8], (u32, u32)) = match entry {
            Entry::Dir { mode } => (S_IFDIR | mode, &[], (0, 0)),
            Entry::File { mode, data } => (S_IFREG | mode, data, (0, 0)),
            Entry::Symlink { target } => (S_IFLNK | 0o777, target.as_bytes(), (0, 0)),
            Entry::CharDev { mode, major, minor } => (S_IFCHR | mode, &[], (*major, *minor)),
        };
        let nlink = if matches!(entry, Entry::Dir { .. }) {
            2
        } else {
            1
        };
        self.ino += 1;
        self.record(path, self.ino, mode, nlink, data, rdev)
    }

    /// Writes the trailer and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.record("TRAILER!!!", 0, 0, 1, &[], (0, 0))?;
        Ok(self.out)
    }

    fn record(
        &mut self,
        path: &str,
        ino: u32,
        mode: u32,
        nlink: u32,
        data: &[u8],
        rdev: (u32, u32),
    ) -> io::Result<()> {
        let size = u32::try_from(data.len())
            .map_err(|_| io::Error::other(format!("{path}: too large for cpio")))?;
        let name_len =
            u32::try_from(path.len() + 1).map_err(|_| io::Error::other("path too long"))?;
        // magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor,
        // rdevmajor, rdevminor, namesize, check
        let fields = [
            ino, mode, 0, 0, nlink, 0, size, 0, 0, rdev.0, rdev.1, name_len, 0,
        ];
        let mut header = String::from("070701");
        for f in fields {
            header.push_str(&format!("{f:08x}"));
        }
        self.put(header.as_bytes())?;
        self.put(path.as_bytes())?;
        self.put(&[0])?;
        self.pad()?;
        self.put(data)?;
        self.pad()
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len();
        Ok(())
    }

    /// Header+name and data are each padded to a multiple of four bytes.
    fn pad(&mut self) -> io::Result<()> {
        let fill = (4 - self.written % 4) % 4;
        self.put(&[0; 3][..fill])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_aligned_and_terminated() {
        let mut w = Writer::new(Vec::new());
        w.add(
            "init",
            &Entry::File {
                mode: 0o755,
                data: b"#!/bin/sh\n".to_vec(),
            },
        )
        .expect("add");
        let out = w.finish().expect("finish");
        assert_eq!(out.len() % 4, 0);
        assert!(out.starts_with(b"070701"));
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("init\0"));
        assert!(text.contains("TRAILER!!!\0"));
    }
}
