//! The dynamic loaders of this host, for the loader guard (`LOADERS`; agent-ebpf
//! `guard::loader`): run as a program (`ld.so FILE`), a loader maps the file it runs itself,
//! so the exec of that file is never judged. The interpreter the daemon's own binary names
//! (`PT_INTERP`) and the usual paths of glibc's and musl's loaders, as far as they exist here.

use std::{fs, io::Read as _, path::PathBuf};

use agent_common::identity::FileKey;

use super::guarded::Identify;

/// Where loaders live on the distributions we know, for the architectures we build for.
const KNOWN: &[&str] = &[
    "/lib64/ld-linux-x86-64.so.2",
    "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
    "/lib/ld-linux-aarch64.so.1",
    "/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1",
    "/lib/ld-musl-x86_64.so.1",
    "/lib/ld-musl-aarch64.so.1",
];

/// Where this host's loaders may be: the known paths and the daemon's own interpreter.
pub fn paths() -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = KNOWN.iter().map(PathBuf::from).collect();
    paths.extend(own_interpreter());
    paths
}

/// `(identity, 1)` of each loader of `paths` found, each once, as `id` finds them (`stat()`'s
/// before the programs that answer for the kernel's view attach, the kernel's after).
pub fn identities(paths: &[PathBuf], id: Identify) -> Vec<(FileKey, u32)> {
    let mut out: Vec<(FileKey, u32)> = Vec::new();
    for p in paths {
        let Some(id) = id(p) else { continue };
        let key = FileKey {
            dev: id.dev,
            ino: id.ino,
        };
        if !out.iter().any(|(k, _)| *k == key) {
            out.push((key, 1));
        }
    }
    out
}

/// How much of the daemon's binary is read for its `PT_INTERP`: linkers put the program
/// headers and the interpreter's name at the start of the file (the whole binary can be
/// hundreds of MiB, read at every start).
const HEAD: u64 = 64 * 1024;

/// The `PT_INTERP` path of the daemon's own binary (None for a static build).
fn own_interpreter() -> Option<PathBuf> {
    let mut head = Vec::new();
    fs::File::open("/proc/self/exe")
        .ok()?
        .take(HEAD)
        .read_to_end(&mut head)
        .ok()?;
    interpreter(&head)
}

/// The `PT_INTERP` path of a 64-bit little-endian ELF image.
fn interpreter(elf: &[u8]) -> Option<PathBuf> {
    let u16_at = |o: usize| Some(u16::from_le_bytes(elf.get(o..o + 2)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(elf.get(o..o + 8)?.try_into().ok()?));
    if elf.get(..5)? != b"\x7fELF\x02" {
        return None;
    }
    let phoff = usize::try_from(u64_at(0x20)?).ok()?;
    let phentsize = usize::from(u16_at(0x36)?);
    for i in 0..usize::from(u16_at(0x38)?) {
        let ph = phoff.checked_add(i.checked_mul(phentsize)?)?;
        const PT_INTERP: u32 = 3;
        if u32::from_le_bytes(elf.get(ph..ph + 4)?.try_into().ok()?) != PT_INTERP {
            continue;
        }
        let offset = usize::try_from(u64_at(ph + 8)?).ok()?;
        let size = usize::try_from(u64_at(ph + 0x20)?).ok()?;
        let raw = elf.get(offset..offset.checked_add(size)?)?;
        let path = raw.split(|b| *b == 0).next()?;
        return Some(PathBuf::from(std::str::from_utf8(path).ok()?));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_binary_names_its_loader() {
        let interp = own_interpreter().expect("a dynamically linked test binary, read in part");
        assert!(
            interp.to_string_lossy().contains("ld-"),
            "{}",
            interp.display()
        );
        assert_eq!(interpreter(b"#!/bin/sh\n"), None);
        assert_eq!(interpreter(b"\x7fELF\x02"), None, "truncated: no panic");
    }
}
