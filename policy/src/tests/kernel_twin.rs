//! The compiled maps, read the way `agent-ebpf/src/rules.rs` reads them and judged slot by
//! slot with the kernel's own matcher (`agent_common::matching`), decide exactly as the
//! userspace matcher does: compile and matching cannot drift apart unnoticed. Only the map
//! lookups are emulated here; the slot logic is the kernel's code.

use agent_common::{
    hash,
    matching::{self, Args, NO_BINARY},
    policy::ANY_BINARY,
};

use super::{id, policy, MapResolver};
use crate::{cidr::to_mapped, compile, Compiled, ConnectAttempt, ExecAttempt, FileId, Transport};

const POLICY: &str = r#"
version: 1
agents:
  - name: ai
    cgroup: /a
    default: { exec: audit, network: deny }
  - name: bots
    cgroup: /b
rules:
  - id: k-mut
    exec: { binary: [/usr/bin/kubectl, /usr/local/bin/kubectl], args: ["delete|apply", "*"] }
    action: approve
  - id: force
    agents: [bots]
    exec: { args: ["*", "--force|-f"], parent: /usr/bin/python3 }
    action: deny
  - id: k-all
    exec: { binary: /usr/bin/kubectl }
    action: audit
  - id: read-only
    exec: { args: ["status|log"] }
    action: allow
  - id: wide
    network: { cidr: [10.0.0.0/8], ports: ["20-25"] }
    action: approve
  - id: narrow
    agents: [ai]
    network: { cidr: [10.20.0.0/16, "fd00::/8"], protocol: udp }
    action: deny
  - id: any-dns
    network: { ports: [53] }
    action: audit
"#;

/// 64 bytes: one more than an argument slot holds.
const LONG: &str = "0123456789012345678901234567890123456789012345678901234567890123";

fn host() -> MapResolver {
    MapResolver::with(&[
        ("/usr/bin/kubectl", 1),
        ("/usr/bin/python3", 2),
        ("/usr/bin/git", 3),
    ])
}

fn binary_id(c: &Compiled, f: FileId) -> Option<u32> {
    c.binaries
        .iter()
        .find(|(k, _)| k.dev == f.dev && k.ino == f.ino)
        .map(|(_, v)| *v)
}

/// An attempt's arguments as the kernel captures them: hashed when they fit a slot.
struct Captured(Vec<Option<u64>>);

impl Args for Captured {
    fn count(&self) -> u32 {
        self.0.len() as u32
    }
    fn known(&self, i: usize) -> u64 {
        u64::from(self.0.get(i).is_some_and(Option::is_some))
    }
    fn hash(&self, i: usize) -> u64 {
        self.0.get(i).copied().flatten().unwrap_or(0)
    }
}

/// (action, rule number) as the kernel computes it.
fn kernel_exec(c: &Compiled, group: u32, default: u32, e: &ExecAttempt) -> (u32, u32) {
    let parent = e.parent.and_then(|p| binary_id(c, p)).unwrap_or(NO_BINARY);
    let args = Captured(e.argv.iter().map(|a| hash::arg(a)).collect());
    let mut best = (default, 0);
    for key in binary_id(c, e.binary).into_iter().chain([ANY_BINARY]) {
        let Some((_, rules)) = c.exec_rules.iter().find(|(k, _)| k.binary == key) else {
            continue;
        };
        for s in &rules.slots[..rules.count as usize] {
            if matching::exec_slot(s, group, parent, Some(&args), best.1) != matching::NO_MATCH {
                best = (s.action, s.rule);
            }
        }
    }
    best
}

fn kernel_connect(c: &Compiled, group: u32, default: u32, a: &ConnectAttempt) -> (u32, u32) {
    let addr = u128::from(to_mapped(a.addr));
    let proto = match a.transport {
        Transport::Tcp => libc::IPPROTO_TCP as u16,
        Transport::Udp => libc::IPPROTO_UDP as u16,
    };
    let hit = c
        .net_rules
        .iter()
        .filter(|(len, k, _)| {
            let bits = len - 32;
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            k.generation == c.generation.to_be_bytes() && u128::from_be_bytes(k.addr) == addr & mask
        })
        .max_by_key(|(len, _, _)| *len);
    let mut best = (default, 0);
    let Some((_, _, rules)) = hit else {
        return best;
    };
    for s in &rules.slots[..rules.count as usize] {
        if matching::net_slot(s, group, a.port, proto, best.1) != 0 {
            best = (s.action, s.rule);
        }
    }
    best
}

fn user(d: crate::Decision) -> (u32, u32) {
    (d.action as u32, d.rule.map_or(0, |r| r.number()))
}

#[test]
fn exec_verdicts_agree() {
    let p = policy(POLICY);
    let c = compile(&p, 1, &host()).expect("compiles");
    let argvs: [&[&str]; 10] = [
        &["k"],
        &["k", "delete"],
        &["k", "delete", "pod"],
        &["k", "apply", "-f", "x"],
        &["k", "push", "--force"],
        &["k", "x", "-f", "y"],
        &["k", "get", "pods"],
        &["k", LONG, "x"],
        &["k", "x", LONG],
        &["k", "status"],
    ];
    let mut checked = 0;
    for (gi, g) in p.agents.iter().enumerate() {
        for binary in [id(1), id(2), id(3), id(99)] {
            for parent in [None, Some(id(2)), Some(id(3))] {
                for argv in argvs {
                    let argv = argv.iter().map(|a| a.as_bytes().to_vec()).collect();
                    let e = ExecAttempt {
                        binary,
                        binary_path: None,
                        argv,
                        parent,
                        agent_written: false,
                    };
                    let want = user(p.decide_exec(g, &e, &host()));
                    let got = kernel_exec(&c, gi as u32 + 1, g.default_exec as u32, &e);
                    assert_eq!(got, want, "group {} {e:?}", g.name);
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 2 * 4 * 3 * 10);
}

#[test]
fn connect_verdicts_agree() {
    let p = policy(POLICY);
    let c = compile(&p, 0, &host()).expect("compiles");
    let addrs = [
        "10.1.1.1",
        "10.20.1.1",
        "::ffff:10.20.1.1",
        "fd00::5",
        "192.0.2.1",
        "2001:db8::1",
    ];
    for (gi, g) in p.agents.iter().enumerate() {
        for addr in addrs {
            for port in [22, 53, 80] {
                for transport in [Transport::Tcp, Transport::Udp] {
                    let a = ConnectAttempt {
                        addr: addr.parse().expect("ip"),
                        port,
                        transport,
                    };
                    let want = user(p.decide_connect(g, &a));
                    let got = kernel_connect(&c, gi as u32 + 1, g.default_network as u32, &a);
                    assert_eq!(got, want, "group {} {a:?}", g.name);
                }
            }
        }
    }
}
