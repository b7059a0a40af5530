//! The built-in rule `countersign-control-plane`: with `--server`, every agent group's first
//! rules deny TCP connections to every place of the control plane, whatever the policy says:
//! the address and port the daemon dialled, the server's other listeners (chat) and its
//! database, as the server announces them at registration (`RegisterResponse.endpoints`).
//! When the server runs on this host, its host is loopback, the unspecified addresses and
//! every address of this host's interfaces, not only the one dialled. An agent can never talk
//! to the server that approves its requests (it has no certificate either; this closes the
//! door before the TLS handshake).

use std::{collections::BTreeMap, net::IpAddr, sync::Arc};

use policy::{Action, Cidr, Location, Match, NetMatch, Policy, PortRange, Protocol, Rule};

/// Id of the built-in rule, as events and `status` show it.
pub const RULE_ID: &str = "countersign-control-plane";
const DESCRIPTION: &str = "built in: agents may not reach the Countersign control plane";

/// A place of the control plane the server announced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// None: every address of the server's host (a listener on 0.0.0.0 or ::).
    pub addr: Option<IpAddr>,
    pub port: u16,
}

/// Where the control plane is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ControlPlaneRule {
    /// Resolved addresses of the server (may be empty while its name does not resolve).
    pub addrs: Vec<IpAddr>,
    pub port: u16,
    /// What the server announced at registration (empty before the first registration).
    pub endpoints: Vec<Endpoint>,
}

impl ControlPlaneRule {
    /// Whether the server runs on this host, whose addresses are `local`.
    fn is_local(&self, local: &[IpAddr]) -> bool {
        self.addrs
            .iter()
            .any(|a| a.is_loopback() || local.contains(a))
    }

    /// Whether `a` is an address of the server's host.
    fn on_server_host(&self, a: IpAddr, local: &[IpAddr]) -> bool {
        self.addrs.contains(&a)
            || (self.is_local(local)
                && (a.is_loopback() || a.is_unspecified() || local.contains(&a)))
    }

    /// The prefixes of the server's host: each address, and when the server is on this host,
    /// every way to reach this host ([`this_host`]).
    fn server_host(&self, local: &[IpAddr]) -> Vec<Cidr> {
        let mut out = cidrs(&self.addrs.iter().map(IpAddr::to_string).collect::<Vec<_>>());
        if self.is_local(local) {
            out.extend(this_host(local));
            out.sort();
            out.dedup();
        }
        out
    }

    /// What the rules deny: (prefixes, ports) pairs, the server's host first.
    pub fn places(&self, local: &[IpAddr]) -> Vec<(Vec<Cidr>, Vec<u16>)> {
        let mut host_ports = vec![self.port];
        let mut elsewhere: BTreeMap<IpAddr, Vec<u16>> = BTreeMap::new();
        for e in &self.endpoints {
            match e.addr {
                // The loopback of a server on another host cannot be reached from here (and
                // denying it would close a port of this host's own loopback).
                Some(a) if a.is_loopback() && !self.is_local(local) => {}
                Some(a) if !self.on_server_host(a, local) => {
                    elsewhere.entry(a).or_default().push(e.port)
                }
                _ => host_ports.push(e.port),
            }
        }
        let mut out = Vec::new();
        let host = self.server_host(local);
        if !host.is_empty() {
            out.push((host, sorted(host_ports)));
        }
        for (addr, ports) in elsewhere {
            out.push((cidrs(&[addr.to_string()]), sorted(ports)));
        }
        out
    }

    /// Puts the rules first in `policy` (`local`: this host's addresses). Refused when the
    /// policy uses the reserved id.
    pub fn inject(&self, policy: &mut Policy, local: &[IpAddr]) -> Result<(), String> {
        reserved(policy, RULE_ID, "keeps agents away from the control plane")?;
        // Nothing resolved yet: no rule rather than a rule matching every address.
        for (i, (cidrs, ports)) in self.places(local).into_iter().enumerate() {
            policy
                .rules
                .insert(i, deny_rule(RULE_ID, DESCRIPTION, cidrs, ports));
        }
        Ok(())
    }
}

/// The endpoints of a `RegisterResponse`, as the rule uses them (an address that is not an
/// IP address, or a port out of range, is left out with a warning).
pub fn announced(endpoints: &[countersign_api::pb::Endpoint]) -> Vec<Endpoint> {
    let mut out: Vec<Endpoint> = Vec::new();
    for e in endpoints {
        let addr = if e.address.is_empty() {
            None
        } else if let Ok(a) = e.address.parse::<IpAddr>() {
            Some(a)
        } else {
            tracing::warn!(address = %e.address, role = %e.role, "the control plane announced an endpoint that is not an IP address: ignored");
            continue;
        };
        let Ok(port) = u16::try_from(e.port) else {
            tracing::warn!(port = e.port, role = %e.role, "the control plane announced an endpoint with an impossible port: ignored");
            continue;
        };
        let endpoint = Endpoint { addr, port };
        if !out.contains(&endpoint) {
            out.push(endpoint);
        }
    }
    out
}

/// Every way to reach this host (`local`: its interfaces' addresses): the whole loopback, the
/// unspecified addresses (a connect to them reaches local listeners) and each address.
pub(super) fn this_host(local: &[IpAddr]) -> Vec<Cidr> {
    let mut texts: Vec<String> = ["127.0.0.0/8", "::1", "0.0.0.0", "::"]
        .map(String::from)
        .to_vec();
    texts.extend(local.iter().map(IpAddr::to_string));
    cidrs(&texts)
}

/// Refuses a policy that uses the id of a built-in rule (which does what `why` says).
pub(super) fn reserved(policy: &Policy, id: &str, why: &str) -> Result<(), String> {
    match policy.rules.iter().find(|r| r.id == id) {
        Some(r) => Err(format!(
            "{}: rule id '{id}' is reserved for the built-in rule that {why}",
            r.location
        )),
        None => Ok(()),
    }
}

fn cidrs(texts: &[String]) -> Vec<Cidr> {
    let mut cidrs: Vec<Cidr> = texts.iter().filter_map(|t| Cidr::parse(t).ok()).collect();
    cidrs.sort();
    cidrs.dedup();
    cidrs
}

pub(super) fn sorted(mut ports: Vec<u16>) -> Vec<u16> {
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// One built-in rule denying TCP connections to `cidrs` on `ports`.
pub(super) fn deny_rule(id: &str, description: &str, cidrs: Vec<Cidr>, ports: Vec<u16>) -> Rule {
    Rule {
        id: id.to_owned(),
        description: Some(description.to_owned()),
        agents: Vec::new(),
        matcher: Match::Network(NetMatch {
            cidrs,
            ports: ports
                .into_iter()
                .map(|p| PortRange { lo: p, hi: p })
                .collect(),
            protocol: Protocol::Tcp,
        }),
        action: Action::Deny,
        approvers: None,
        location: Location {
            file: Arc::from("<built-in>"),
            line: 0,
        },
    }
}

#[cfg(test)]
pub(super) mod tests {
    use policy::{ConnectAttempt, Transport};

    use super::*;

    const POLICY: &str = r#"
version: 1
agents:
  - name: coding
    cgroup: /cs/coding
    default: { exec: allow, network: allow }
  - name: ops
    cgroup: /cs/ops
    default: { exec: allow, network: deny }
rules:
  - id: everything-local
    network: { cidr: [127.0.0.0/8, "::1"] }
    action: allow
"#;

    /// A policy of two groups (`coding` allows by default, `ops` denies) whose one rule allows
    /// the loopback (`everything-local`).
    pub(in crate::daemon) fn policy() -> Policy {
        Policy::from_str("test.yaml", POLICY).expect("valid policy")
    }

    pub(in crate::daemon) fn connect(
        addr: &str,
        port: u16,
        transport: Transport,
    ) -> ConnectAttempt {
        ConnectAttempt {
            addr: addr.parse().expect("address"),
            port,
            transport,
        }
    }

    fn rule() -> ControlPlaneRule {
        ControlPlaneRule {
            addrs: vec![
                "10.1.2.3".parse().expect("v4"),
                "fd00::7".parse().expect("v6"),
            ],
            port: 7443,
            endpoints: Vec::new(),
        }
    }

    #[test]
    fn the_server_is_denied_first_in_every_group() {
        let mut p = policy();
        rule().inject(&mut p, &[]).expect("inject");
        assert_eq!(p.rules[0].id, RULE_ID);
        for group in &p.agents {
            for (addr, port, transport, denied) in [
                ("10.1.2.3", 7443, Transport::Tcp, true),
                ("::ffff:10.1.2.3", 7443, Transport::Tcp, true),
                ("fd00::7", 7443, Transport::Tcp, true),
                ("10.1.2.3", 7444, Transport::Tcp, false),
                ("10.1.2.3", 7443, Transport::Udp, false),
                ("10.1.2.4", 7443, Transport::Tcp, false),
            ] {
                let d = p.decide_connect(group, &connect(addr, port, transport));
                let by_builtin = d.rule.as_ref().is_some_and(|r| r.id == RULE_ID);
                assert_eq!(
                    by_builtin, denied,
                    "{} {addr}:{port}: {}",
                    group.name, d.reason
                );
                if denied {
                    assert_eq!(d.action, Action::Deny);
                }
            }
        }
    }

    #[test]
    fn a_local_server_closes_loopback_too() {
        let mut p = policy();
        let local = ControlPlaneRule {
            addrs: vec!["127.0.0.1".parse().expect("v4")],
            port: 7543,
            endpoints: Vec::new(),
        };
        local.inject(&mut p, &[]).expect("inject");
        let group = &p.agents[0];
        for addr in ["127.0.0.1", "127.0.0.2", "::1", "0.0.0.0", "::"] {
            let d = p.decide_connect(group, &connect(addr, 7543, Transport::Tcp));
            assert_eq!(d.action, Action::Deny, "{addr}: {}", d.reason);
        }
        // Other local ports keep their policy (the `everything-local` rule allows them).
        let d = p.decide_connect(group, &connect("127.0.0.1", 8080, Transport::Tcp));
        assert_eq!(d.action, Action::Allow, "{}", d.reason);
    }

    #[test]
    fn the_rule_compiles_into_the_kernel_maps() {
        let mut p = policy();
        rule().inject(&mut p, &[]).expect("inject");
        let compiled = policy::compile(&p, 0, &policy::HostResolver).expect("compile");
        assert_eq!(compiled.rule_ids[0], RULE_ID);
        assert_eq!(compiled.rule_id(1), Some(RULE_ID));
    }

    #[test]
    fn the_id_is_reserved_and_unresolved_names_add_nothing() {
        let text = POLICY.replace("everything-local", RULE_ID);
        let mut p = Policy::from_str("test.yaml", &text).expect("valid policy");
        let e = rule().inject(&mut p, &[]).expect_err("reserved");
        assert!(e.contains("reserved"), "{e}");
        let mut p = policy();
        ControlPlaneRule::default()
            .inject(&mut p, &[])
            .expect("nothing to add");
        assert_eq!(p.rules.len(), 1);
    }

    fn denied(p: &Policy, addr: &str, port: u16) -> bool {
        let d = p.decide_connect(&p.agents[0], &connect(addr, port, Transport::Tcp));
        d.action == Action::Deny && d.rule.as_ref().is_some_and(|r| r.id == RULE_ID)
    }

    /// The server dialled at 127.0.0.1 also listens (gRPC on every address, chat on
    /// 9300) and keeps its database on another host: an agent reaches none of them — not
    /// through this host's LAN address either — and nothing else is denied.
    #[test]
    fn every_place_the_server_announces_is_denied() {
        let local: Vec<IpAddr> = ["192.168.7.20", "fd00::20"]
            .map(|a| a.parse().expect("ip"))
            .to_vec();
        let cp = ControlPlaneRule {
            addrs: vec!["127.0.0.1".parse().expect("v4")],
            port: 7443,
            endpoints: vec![
                Endpoint {
                    addr: None,
                    port: 7443,
                },
                Endpoint {
                    addr: Some("127.0.0.1".parse().expect("v4")),
                    port: 9300,
                },
                Endpoint {
                    addr: Some("10.9.0.4".parse().expect("v4")),
                    port: 5432,
                },
            ],
        };
        let mut p = policy();
        cp.inject(&mut p, &local).expect("inject");
        assert_eq!(
            p.rules.iter().filter(|r| r.id == RULE_ID).count(),
            2,
            "this host, and the database's"
        );
        for (addr, port) in [
            ("127.0.0.1", 7443),
            ("192.168.7.20", 7443),
            ("fd00::20", 7443),
            ("::ffff:192.168.7.20", 9300),
            ("127.0.0.5", 9300),
            ("0.0.0.0", 9300),
            ("10.9.0.4", 5432),
        ] {
            assert!(denied(&p, addr, port), "{addr}:{port}");
        }
        for (addr, port) in [
            ("192.168.7.21", 7443),
            ("10.9.0.4", 7443),
            ("10.9.0.5", 5432),
            ("192.168.7.20", 8080),
        ] {
            assert!(!denied(&p, addr, port), "{addr}:{port}");
        }
    }

    /// A server on another host announcing a listener on every address: its other ports are
    /// denied at the addresses the daemon dialled, and this host's addresses stay open.
    #[test]
    fn a_remote_server_is_denied_at_its_own_addresses_only() {
        let local: Vec<IpAddr> = vec!["192.168.7.20".parse().expect("ip")];
        let mut cp = rule();
        cp.endpoints = vec![
            Endpoint {
                addr: None,
                port: 9300,
            },
            // Its database on its own loopback: out of this host's reach.
            Endpoint {
                addr: Some("127.0.0.1".parse().expect("v4")),
                port: 5432,
            },
        ];
        let mut p = policy();
        cp.inject(&mut p, &local).expect("inject");
        assert!(denied(&p, "10.1.2.3", 9300));
        assert!(denied(&p, "fd00::7", 7443));
        assert!(!denied(&p, "192.168.7.20", 9300));
        assert!(!denied(&p, "127.0.0.1", 9300));
        assert!(
            !denied(&p, "127.0.0.1", 5432),
            "this host's own loopback stays open"
        );
    }
}
