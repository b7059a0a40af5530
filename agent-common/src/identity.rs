//! Content identity of executables, and the marks on files that agents wrote.
//!
//! A rule names binaries by path; the kernel compares the (device, inode) of the file really
//! executed. A copy has another inode, so a file that a watched process wrote (or a memfd, or
//! any file without a name) is also known by its *head*: the first [`HEAD_LEN`] bytes, which
//! the kernel reads into `linux_binprm.buf` to choose a loader before any LSM hook runs. For an
//! ELF executable they are the ELF header and the first program headers: entry point, segment
//! offsets, sizes and addresses, which differ between any two builds. A byte copy, a copy with
//! bytes appended, a `cat >` re-creation and a memfd image share them with the original.
//! [`normalise`] clears the fields no loader reads (identification padding and the section
//! header table's place and size), so that rewriting those changes nothing. What still makes a
//! "different program": editing the entry point or the program headers, or another build —
//! that is, rewriting the binary (docs/architecture.md, "Identity of executables").

/// Bytes of a file's head (`BINPRM_BUF_SIZE`, `linux/binfmts.h`).
pub const HEAD_LEN: usize = 256;

/// Marks kept on files that watched processes wrote. An LRU map: the oldest marks go first
/// when more files than this were written since (docs/architecture.md says what that means).
pub const MAX_WRITTEN: u32 = 65536;

/// New marks after which the oldest may be gone (an LRU map starts evicting, in batches, before
/// it is full): from then on, `MARKS` says so and every exec of a file no rule names by inode is
/// looked up by content, so writing many files cannot age the mark of a copy out.
pub const MARKS_SAFE: u64 = MAX_WRITTEN as u64 / 2;

/// Key of `CONTENTS`: a guarded ELF binary's normalised head. Value: its binary id.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ContentKey {
    pub generation: u32,
    /// Alignment only.
    pub _pad: u32,
    pub head: [u8; HEAD_LEN],
}

/// Key of `WRITTEN`: a file (kernel device number, inode) that a watched process opened for
/// writing. Value: 1.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileKey {
    pub dev: u64,
    pub ino: u64,
}

/// The one value of `IDENTIFY`: the daemon asks the kernel which identity a file has (on
/// btrfs subvolumes and some overlayfs mounts `stat()` reports another device than the one the
/// programs compare). It writes its thread id, opens the file, and the program that sees the
/// open (`file_open`, or `mark_written` in fallback mode) fills in `dev` and `ino`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Identify {
    /// The asking thread; 0 when nobody asks.
    pub tid: u32,
    /// Alignment only.
    pub _pad: u32,
    pub dev: u64,
    pub ino: u64,
}

const _: () = assert!(core::mem::size_of::<ContentKey>() == 8 + HEAD_LEN);

/// `\x7fELF`, 64-bit, little-endian: the executables content identity applies to.
#[inline(always)]
pub fn is_elf64(head: &[u8; HEAD_LEN]) -> bool {
    head[0] == 0x7f && head[1] == b'E' && head[2] == b'L' && head[3] == b'F' && head[4] == 2
}

/// Clears what no loader reads: `e_ident[EI_PAD]` (bytes 9..16), `e_shoff` (40..48),
/// `e_shentsize`, `e_shnum`, `e_shstrndx` (58..64). Fixed offsets and no loop, so the kernel
/// programs can run it on their copy of the head.
#[inline(always)]
pub fn normalise(head: &mut [u8; HEAD_LEN]) {
    head[9] = 0;
    head[10] = 0;
    head[11] = 0;
    head[12] = 0;
    head[13] = 0;
    head[14] = 0;
    head[15] = 0;
    head[40] = 0;
    head[41] = 0;
    head[42] = 0;
    head[43] = 0;
    head[44] = 0;
    head[45] = 0;
    head[46] = 0;
    head[47] = 0;
    head[58] = 0;
    head[59] = 0;
    head[60] = 0;
    head[61] = 0;
    head[62] = 0;
    head[63] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalising_ignores_padding_and_section_headers_only() {
        let mut a = [0u8; HEAD_LEN];
        a[..5].copy_from_slice(b"\x7fELF\x02");
        for (i, b) in a.iter_mut().enumerate().skip(5) {
            *b = i as u8;
        }
        assert!(is_elf64(&a));
        let mut b = a;
        b[9] = 0xaa; // padding
        b[41] = 0xbb; // e_shoff
        b[61] = 0xcc; // e_shnum
        normalise(&mut a);
        normalise(&mut b);
        assert_eq!(a, b);
        let mut c = b;
        c[24] ^= 1; // e_entry
        assert_ne!(b, c);
        let mut d = b;
        d[HEAD_LEN - 1] ^= 1; // a program header
        assert_ne!(b, d);
    }
}
