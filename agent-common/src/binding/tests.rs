use std::{
    format,
    net::IpAddr,
    string::{String, ToString},
    vec::Vec,
};

use crate::{grant::Grant, ARGV_LEN};

use super::*;

/// Kernel device number of `major:minor`.
fn dev(major: u64, minor: u64) -> u64 {
    (major << 20) | minor
}

// Lookup hashes the kernel computed (fallback mode, a real host), from real event logs.

#[test]
fn exec_lookup_matches_the_kernel() {
    let b = Binding::exec(0, dev(254, 0), 247_730, &["rm", "-rf", "/tmp/scratch"]);
    assert_eq!(b.lookup(), 0xd0f9_34a5_16ed_8c19);
    let guarded = "/tmp/countersign-tests/restart-3354/bin/guarded";
    let b = Binding::exec(0, dev(254, 0), 10_100_773, &[guarded, "before"]);
    assert_eq!(b.lookup(), 0xe913_c9e0_6a21_b1ca);
    let b = Binding::exec(0, dev(254, 0), 10_100_773, &[guarded, "while-down"]);
    assert_eq!(b.lookup(), 0xb2c0_6d04_3aab_49da);
}

#[test]
fn connect_lookup_matches_the_kernel() {
    let (tcp, udp) = (6, 17);
    let metadata: IpAddr = "169.254.169.254".parse().expect("address");
    assert_eq!(
        Binding::connect(0, metadata, 80, tcp).lookup(),
        0xc47b_4f54_1399_e611
    );
    let mapped: IpAddr = "::ffff:127.0.2.7".parse().expect("address");
    assert_eq!(
        Binding::connect(0, mapped, 35783, tcp).lookup(),
        0xf2b1_eced_6aff_3367
    );
    let v4: IpAddr = "127.0.2.7".parse().expect("address");
    assert_eq!(
        Binding::connect(0, v4, 33728, udp).lookup(),
        0x9377_0749_0811_d4e3
    );
    assert_eq!(
        Binding::connect(0, mapped, 1, tcp).id(),
        Binding::connect(0, v4, 1, tcp).id(),
        "IPv4 and its mapped form are one operation"
    );
}

#[test]
fn the_id_names_kind_rule_file_and_exact_arguments() {
    let a = Binding::exec(3, 1, 2, &["kubectl", "delete"]);
    assert_eq!(a.id().len(), ID_LEN);
    assert!(is_id(&a.id()));
    // argv[0] takes no part.
    assert_eq!(
        a.id(),
        Binding::exec(3, 1, 2, &["/usr/bin/kubectl", "delete"]).id()
    );
    for other in [
        Binding::exec(4, 1, 2, &["kubectl", "delete"]),
        Binding::exec(3, 1, 3, &["kubectl", "delete"]),
        Binding::exec(3, 9, 2, &["kubectl", "delete"]),
        Binding::exec(3, 1, 2, &["kubectl", "delete", ""]),
        Binding::exec(3, 1, 2, &["kubectl", "delet", "e"]),
        Binding::exec(3, 1, 2, &["kubectl", "delete"]).stamped(5),
        Binding::connect(3, "::1".parse().expect("address"), 1, 6),
    ] {
        assert_ne!(a.id(), other.id(), "{other:?}");
        assert!(!other.bound_by(&a.grant(1, 1, 1)), "{other:?}");
    }
    assert!(a.bound_by(&a.grant(1, 1, 1)));
    // A file rewritten since: another operation, and the grant of one binds not the other.
    let written = a.clone().stamped(5);
    assert_ne!(written.id(), written.clone().stamped(6).id());
    assert!(!written.clone().stamped(6).bound_by(&written.grant(1, 1, 1)));
    assert_eq!(
        written.lookup(),
        a.lookup(),
        "the stamp only decides, never finds"
    );
    assert!(!is_id("0123456789abcdef"));
    assert!(!is_id(&a.id().to_uppercase()));
}

#[test]
fn a_grant_slot_holds_exactly_the_capture() {
    let g = Binding::exec(7, 1, 2, &["kubectl", "delete", "pod"]).grant(10, 11, 12);
    assert_eq!((g.kind, g.rule, g.dev, g.ino, g.argv_len), (1, 7, 1, 2, 11));
    assert_eq!(&g.argv[..12], b"delete\0pod\0\0");
    assert_eq!((g.expires_ns, g.grant_id, g.ticket), (10, 11, 12));
    let c = Binding::connect(0, "10.0.0.1".parse().expect("address"), 5432, 6).grant(1, 2, 0);
    assert_eq!((c.kind, c.port, c.protocol, c.argv_len), (2, 5432, 6, 0));
    assert_eq!(&c.addr[10..], &[0xff, 0xff, 10, 0, 0, 1]);
    assert_ne!(c, Grant::EMPTY);
}

#[test]
fn capture_layout() {
    let c = Capture::of(&["kubectl", "delete", "pod"]);
    assert_eq!(c.len, 11);
    assert!(!c.truncated);
    assert!(c.buf[11..].iter().all(|b| *b == 0));
    assert_eq!(Capture::of(&["ls"]).len, 0);
}

#[test]
fn long_captures_are_cut_and_marked_like_the_kernel_does() {
    // One argument longer than the buffer: ARGV_LEN - 1 bytes and a NUL, truncated.
    let long = "x".repeat(ARGV_LEN + 100);
    let c = Capture::of(&["a", long.as_str(), "never-read"]);
    assert_eq!(c.len as usize, ARGV_LEN);
    assert!(c.truncated);
    assert!(c.buf[..ARGV_LEN - 1].iter().all(|b| *b == b'x'));
    assert_eq!(c.buf[ARGV_LEN - 1], 0);
    // Exactly ARGV_LEN - 1 bytes and the NUL fill the buffer: the kernel cannot tell this
    // from a longer argument cut to fit, so it is truncated too; one byte less is whole.
    let exact = "x".repeat(ARGV_LEN - 1);
    assert!(Capture::of(&["a", exact.as_str()]).truncated);
    let fits = "x".repeat(ARGV_LEN - 2);
    let c = Capture::of(&["a", fits.as_str()]);
    assert!(!c.truncated);
    assert_eq!(c.len as usize, ARGV_LEN - 1);
    // An argument spilling over the end.
    let first = "y".repeat(500);
    let c = Capture::of(&["a", first.as_str(), "zzzzzzzzzzzzzzzzzzzz"]);
    assert_eq!(c.len as usize, ARGV_LEN);
    assert!(c.truncated);
    assert_eq!(c.buf[500], 0);
    assert!(c.buf[501..].iter().all(|b| *b == b'z'));
    // Only argv[1..32] are read; more arguments truncate.
    let many: Vec<String> = (0..40).map(|i| i.to_string()).collect();
    let c = Capture::of(&many);
    let expected: usize = many[1..32].iter().map(|a| a.len() + 1).sum();
    assert_eq!(c.len as usize, expected);
    assert!(c.truncated);
    assert!(!Capture::of(&many[..32]).truncated);
    assert!(Binding::exec(0, 1, 2, &many).truncated());
}

#[test]
fn two_commands_that_differ_after_the_capture_are_both_truncated() {
    let head = "p".repeat(600);
    let a = Binding::exec(1, 1, 2, &["x", &format!("{head}-approved")]);
    let b = Binding::exec(1, 1, 2, &["x", &format!("{head}-other")]);
    assert!(a.truncated() && b.truncated());
    // Same capture, so the kernel could not tell them apart: neither can be granted.
    assert_eq!(a.lookup(), b.lookup());
}
