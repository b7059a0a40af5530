//! The userspace twin of the kernel's fingerprints (`agent-ebpf/src/argv.rs` and
//! `agent-ebpf/src/connect.rs`), so that an operation asked for ahead (`request`) carries the
//! very fingerprint the kernel will compute when the agent tries it, and a grant for one
//! matches the other.

use std::net::IpAddr;

use agent_common::{hash, ARGV_LEN};

/// Argument pointers the kernel reads at most (`MAX_ARG_PTRS` in `agent-ebpf/src/argv.rs`):
/// argv[0..32]; argv[1..32] make the fingerprint's tail.
const MAX_ARG_PTRS: usize = 32;

/// Why an operation cannot be fingerprinted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FingerprintError {
    #[error("argument {0} contains a NUL byte: no process can pass it")]
    Nul(usize),
    #[error("argv is empty: argv[0] is needed")]
    NoArgv,
    #[error("protocol {0:?} is not tcp or udp")]
    Protocol(String),
}

/// argv[1..] laid out as the kernel captures it: each argument and its NUL, one after the
/// other, cut at [`ARGV_LEN`] bytes; returns the buffer and the captured length.
///
/// The kernel reads each argument with `bpf_probe_read_user_str(dst, ARGV_LEN, arg)` at the
/// current length: at most `ARGV_LEN - 1` bytes and a NUL; a length past `ARGV_LEN` is cut to
/// it and the capture stops.
pub fn capture_tail(argv: &[impl AsRef<[u8]>]) -> ([u8; ARGV_LEN], u32) {
    let mut buf = [0u8; ARGV_LEN * 2];
    let mut len = 0usize;
    for arg in argv.iter().take(MAX_ARG_PTRS).skip(1) {
        if len >= ARGV_LEN {
            break;
        }
        let arg = arg.as_ref();
        let n = (arg.len() + 1).min(ARGV_LEN);
        buf[len..len + n - 1].copy_from_slice(&arg[..n - 1]);
        buf[len + n - 1] = 0;
        len = (len + n).min(ARGV_LEN);
    }
    let mut hashed = [0u8; ARGV_LEN];
    hashed.copy_from_slice(&buf[..ARGV_LEN]);
    (hashed, len as u32)
}

/// Fingerprint of an exec of the file `(dev, ino)` (kernel device encoding,
/// `major << 20 | minor`) with `argv` (argv[0] included; it takes no part).
pub fn exec(dev: u64, ino: u64, argv: &[String]) -> Result<u64, FingerprintError> {
    if argv.is_empty() {
        return Err(FingerprintError::NoArgv);
    }
    if let Some(i) = argv.iter().position(|a| a.as_bytes().contains(&0)) {
        return Err(FingerprintError::Nul(i));
    }
    let (buf, len) = capture_tail(argv);
    Ok(hash::exec_fingerprint(dev, ino, hash::tail_hash(&buf, len)))
}

/// `IPPROTO_*` number of `tcp` or `udp`.
pub fn protocol_number(name: &str) -> Result<u16, FingerprintError> {
    match name {
        "tcp" => Ok(libc::IPPROTO_TCP as u16),
        "udp" => Ok(libc::IPPROTO_UDP as u16),
        other => Err(FingerprintError::Protocol(other.to_owned())),
    }
}

/// Fingerprint of a connect: the kernel hashes the IPv6 address, or the IPv4-mapped form of an
/// IPv4 one (so `10.0.0.1` and `::ffff:10.0.0.1` are one operation).
pub fn connect(addr: IpAddr, port: u16, protocol: u16) -> u64 {
    let mapped = match addr {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    };
    hash::connect_fingerprint(&mapped.octets(), port, protocol)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    /// Kernel device number of `major:minor`.
    fn dev(major: u64, minor: u64) -> u64 {
        (major << 20) | minor
    }

    // Fingerprints the kernel computed (fallback mode, this host), from real event logs.

    #[test]
    fn exec_matches_the_kernel() {
        let fp = exec(dev(254, 0), 247_730, &argv(&["rm", "-rf", "/tmp/scratch"]));
        assert_eq!(fp, Ok(0xd0f9_34a5_16ed_8c19));
        let guarded = "/tmp/countersign-tests/restart-3354/bin/guarded";
        let fp = exec(dev(254, 0), 10_100_773, &argv(&[guarded, "before"]));
        assert_eq!(fp, Ok(0xe913_c9e0_6a21_b1ca));
        let fp = exec(dev(254, 0), 10_100_773, &argv(&[guarded, "while-down"]));
        assert_eq!(fp, Ok(0xb2c0_6d04_3aab_49da));
    }

    #[test]
    fn argv0_takes_no_part() {
        let a = exec(1, 2, &argv(&["kubectl", "delete"]));
        let b = exec(1, 2, &argv(&["/usr/bin/kubectl", "delete"]));
        assert_eq!(a, b);
        assert_ne!(a, exec(1, 3, &argv(&["kubectl", "delete"])));
        assert_ne!(a, exec(1, 2, &argv(&["kubectl", "delete", ""])));
    }

    #[test]
    fn connect_matches_the_kernel() {
        let tcp = protocol_number("tcp").expect("tcp");
        let udp = protocol_number("udp").expect("udp");
        let metadata: IpAddr = "169.254.169.254".parse().expect("address");
        assert_eq!(connect(metadata, 80, tcp), 0xc47b_4f54_1399_e611);
        let mapped: IpAddr = "::ffff:127.0.2.7".parse().expect("address");
        assert_eq!(connect(mapped, 35783, tcp), 0xf2b1_eced_6aff_3367);
        let v4: IpAddr = "127.0.2.7".parse().expect("address");
        assert_eq!(connect(v4, 33728, udp), 0x9377_0749_0811_d4e3);
        assert!(protocol_number("icmp").is_err());
    }

    #[test]
    fn tail_layout() {
        let (buf, len) = capture_tail(&["kubectl", "delete", "pod"]);
        assert_eq!(len, 11);
        assert_eq!(&buf[..12], b"delete\0pod\0\0");
        assert!(buf[11..].iter().all(|b| *b == 0));
        // No arguments after argv[0]: an empty tail.
        assert_eq!(capture_tail(&["ls"]).1, 0);
    }

    #[test]
    fn long_tails_are_cut_like_the_kernel_cuts_them() {
        // One argument longer than the buffer: ARGV_LEN - 1 bytes and a NUL.
        let long = "x".repeat(ARGV_LEN + 100);
        let (buf, len) = capture_tail(&["a", long.as_str(), "never-read"]);
        assert_eq!(len as usize, ARGV_LEN);
        assert!(buf[..ARGV_LEN - 1].iter().all(|b| *b == b'x'));
        assert_eq!(buf[ARGV_LEN - 1], 0);
        // An argument spilling over the end: the bytes up to ARGV_LEN are hashed, no NUL.
        let first = "y".repeat(500);
        let (buf, len) = capture_tail(&["a", first.as_str(), "zzzzzzzzzzzzzzzzzzzz"]);
        assert_eq!(len as usize, ARGV_LEN);
        assert_eq!(buf[500], 0);
        assert!(buf[501..].iter().all(|b| *b == b'z'));
        // Only argv[1..32] are read.
        let many: Vec<String> = (0..40).map(|i| i.to_string()).collect();
        let (_, len) = capture_tail(&many);
        let expected: usize = many[1..32].iter().map(|a| a.len() + 1).sum();
        assert_eq!(len as usize, expected);
    }

    #[test]
    fn nul_bytes_are_refused() {
        assert_eq!(
            exec(1, 2, &argv(&["a", "b\0c"])),
            Err(FingerprintError::Nul(1))
        );
        assert_eq!(exec(1, 2, &[]), Err(FingerprintError::NoArgv));
    }
}
