//! The exact operation a grant binds (docs/architecture.md, "Grant binding"), and the id that
//! names it everywhere in userspace: in events, requests, decisions and grant orders.
//!
//! The kernel finds grants by a cheap 64-bit lookup hash ([`Binding::lookup`]) and then
//! compares the whole binding. Userspace needs a name that nobody can make two operations
//! share: an agent that could craft a second operation with the name of an approved one
//! would have the approver's request, the server's de-duplication and the daemon's grant
//! order all point at the wrong one. So the id is SHA-256 of the binding's canonical
//! encoding, cut to 128 bits ([`Binding::id`]): a crafted collision costs about 2^64 hashes.

use std::{boxed::Box, net::IpAddr, string::String, vec};

use crate::{
    event::{flags, Event, EventKind},
    grant::{kind, Grant},
    hash, ARGV_LEN,
};
use sha2::{Digest, Sha256};

/// Argument pointers the kernel reads at most (`MAX_ARG_PTRS` in `agent-ebpf/src/argv.rs`):
/// argv[0..32]; argv[1..32] make the captured tail.
const MAX_ARG_PTRS: usize = 32;

/// Hex digits of an operation id.
pub const ID_LEN: usize = 32;

/// argv[1..] as the kernel captures it.
#[derive(Clone, PartialEq, Eq)]
pub struct Capture {
    /// NUL-separated arguments, zero-padded.
    pub buf: Box<[u8; ARGV_LEN]>,
    pub len: u32,
    /// The arguments did not fit: the capture is not the whole operation.
    pub truncated: bool,
}

impl Capture {
    /// argv[1..] laid out as the kernel captures it (`agent-ebpf/src/argv.rs`): each
    /// argument and its NUL, one after the other. The kernel reads each argument with
    /// `bpf_probe_read_user_str(dst, ARGV_LEN, arg)` at the current length, so at most
    /// `ARGV_LEN - 1` bytes and a NUL; a capture that reaches `ARGV_LEN` bytes, or more than
    /// `MAX_ARG_PTRS` pointers, is truncated (a full buffer cannot tell whether more followed).
    pub fn of(argv: &[impl AsRef<[u8]>]) -> Self {
        let mut buf = vec![0u8; ARGV_LEN * 2];
        let mut len = 0usize;
        let mut truncated = argv.len() > MAX_ARG_PTRS;
        for arg in argv.iter().take(MAX_ARG_PTRS).skip(1) {
            if len >= ARGV_LEN {
                truncated = true;
                break;
            }
            let arg = arg.as_ref();
            let n = (arg.len() + 1).min(ARGV_LEN);
            buf[len..len + n - 1].copy_from_slice(&arg[..n - 1]);
            buf[len + n - 1] = 0;
            len += n;
            if len >= ARGV_LEN {
                len = ARGV_LEN;
                truncated = true;
            }
        }
        let mut out = Box::new([0u8; ARGV_LEN]);
        out.copy_from_slice(&buf[..ARGV_LEN]);
        Self {
            buf: out,
            len: len as u32,
            truncated,
        }
    }

    /// A capture of exactly `bytes` (already in the kernel's layout; at most `ARGV_LEN` of
    /// them are kept).
    pub fn exact(bytes: &[u8], truncated: bool) -> Self {
        let len = bytes.len().min(ARGV_LEN);
        let mut buf = Box::new([0u8; ARGV_LEN]);
        buf[..len].copy_from_slice(&bytes[..len]);
        Self {
            buf,
            len: len as u32,
            truncated,
        }
    }

    /// The kernel's hash of the capture (part of the lookup hash).
    pub fn hash(&self) -> u64 {
        hash::tail_hash(&self.buf, self.len)
    }
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture")
            .field(
                "argv",
                &String::from_utf8_lossy(&self.buf[..self.len as usize]),
            )
            .field("truncated", &self.truncated)
            .finish()
    }
}

/// What the operation is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// An exec of the file `(dev, ino)` (kernel device encoding) with these arguments, the
    /// file as it was when its write stamp was `stamp` (`Grant::stamp`; 0: never written by
    /// a watched process, as far as the marks remember).
    Exec {
        dev: u64,
        ino: u64,
        stamp: u64,
        argv: Capture,
    },
    /// A connect (or UDP sendmsg) to an IPv6 or IPv4-mapped address.
    Connect {
        addr: [u8; 16],
        port: u16,
        protocol: u16,
    },
}

/// An operation exactly as a grant binds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    /// Rule number (index + 1) that asks for approval; 0 for an agent group's default.
    pub rule: u32,
    pub target: Target,
}

impl Binding {
    /// An exec of `(dev, ino)` with `argv` (argv[0] included; it takes no part).
    pub fn exec(rule: u32, dev: u64, ino: u64, argv: &[impl AsRef<[u8]>]) -> Self {
        Self {
            rule,
            target: Target::Exec {
                dev,
                ino,
                stamp: 0,
                argv: Capture::of(argv),
            },
        }
    }

    /// The same exec of the file as it was at write stamp `stamp`.
    pub fn stamped(mut self, stamp: u64) -> Self {
        if let Target::Exec { stamp: s, .. } = &mut self.target {
            *s = stamp;
        }
        self
    }

    /// A connect: the kernel sees IPv4 as IPv4-mapped IPv6, so `10.0.0.1` and
    /// `::ffff:10.0.0.1` are one operation.
    pub fn connect(rule: u32, addr: IpAddr, port: u16, protocol: u16) -> Self {
        let mapped = match addr {
            IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            IpAddr::V6(v6) => v6,
        };
        Self {
            rule,
            target: Target::Connect {
                addr: mapped.octets(),
                port,
                protocol,
            },
        }
    }

    /// The operation a kernel event reports; None for an event that is not an exec or
    /// connect judgement.
    pub fn of_event(e: &Event) -> Option<Self> {
        let target = match EventKind::from_u32(e.kind)? {
            EventKind::Exec | EventKind::ArgvMismatch => {
                let len = (e.argv_len as usize).min(ARGV_LEN);
                Target::Exec {
                    dev: e.dev,
                    ino: e.ino,
                    stamp: e.stamp,
                    argv: Capture::exact(&e.argv[..len], e.flags & flags::ARGV_TRUNCATED != 0),
                }
            }
            EventKind::Connect => Target::Connect {
                addr: e.addr,
                port: e.port,
                protocol: e.protocol,
            },
            // Nothing a grant could let through: tamper attempts are refused, never approved.
            EventKind::Tamper => return None,
        };
        Some(Self {
            rule: e.rule,
            target,
        })
    }

    /// Whether the kernel could not capture the whole operation: no grant can bind it.
    pub fn truncated(&self) -> bool {
        matches!(&self.target, Target::Exec { argv, .. } if argv.truncated)
    }

    /// The kernel's lookup hash (the grant map key; `agent_common::hash`).
    pub fn lookup(&self) -> u64 {
        match &self.target {
            Target::Exec { dev, ino, argv, .. } => hash::exec_fingerprint(*dev, *ino, argv.hash()),
            Target::Connect {
                addr,
                port,
                protocol,
            } => hash::connect_fingerprint(addr, *port, *protocol),
        }
    }

    /// The operation's id: 32 hex digits of SHA-256 over the canonical encoding.
    pub fn id(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"countersign operation v1\0");
        h.update(self.rule.to_le_bytes());
        match &self.target {
            Target::Exec {
                dev,
                ino,
                stamp,
                argv,
            } => {
                h.update(kind::EXEC.to_le_bytes());
                h.update(dev.to_le_bytes());
                h.update(ino.to_le_bytes());
                h.update([u8::from(argv.truncated)]);
                h.update(argv.len.to_le_bytes());
                h.update(&argv.buf[..argv.len as usize]);
                // After the length-delimited arguments, so unambiguous; absent when 0, so the
                // ids of files nobody wrote are those of v1 daemons.
                if *stamp != 0 {
                    h.update(b"stamp\0");
                    h.update(stamp.to_le_bytes());
                }
            }
            Target::Connect {
                addr,
                port,
                protocol,
            } => {
                h.update(kind::CONNECT.to_le_bytes());
                h.update(addr);
                h.update(port.to_le_bytes());
                h.update(protocol.to_le_bytes());
            }
        }
        hex::encode(&h.finalize()[..ID_LEN / 2])
    }

    /// The kernel grant slot that lets exactly this operation through.
    pub fn grant(&self, expires_ns: u64, grant_id: u64, ticket: u64) -> Grant {
        let mut g = Grant {
            expires_ns,
            grant_id,
            ticket,
            rule: self.rule,
            ..Grant::EMPTY
        };
        match &self.target {
            Target::Exec {
                dev,
                ino,
                stamp,
                argv,
            } => {
                g.kind = kind::EXEC;
                g.dev = *dev;
                g.ino = *ino;
                g.stamp = *stamp;
                g.argv_len = argv.len;
                g.argv = *argv.buf;
            }
            Target::Connect {
                addr,
                port,
                protocol,
            } => {
                g.kind = kind::CONNECT;
                g.addr = *addr;
                g.port = *port;
                g.protocol = *protocol;
            }
        }
        g
    }

    /// Whether kernel grant slot `g` binds this operation (what the kernel compares).
    pub fn bound_by(&self, g: &Grant) -> bool {
        let mine = self.grant(g.expires_ns, g.grant_id, g.ticket);
        mine == *g
    }
}

/// Whether `s` looks like an operation id (32 lowercase hex digits).
pub fn is_id(s: &str) -> bool {
    s.len() == ID_LEN
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests;
