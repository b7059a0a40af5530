//! The built-in rule `countersign-control-plane`: with `--server`, every agent group's first
//! rule denies TCP connections to the control plane's addresses and port, whatever the policy
//! says. An agent can never talk to the server that approves its requests (it has no
//! certificate either; this closes the door before the TLS handshake).

use std::{net::IpAddr, sync::Arc};

use policy::{Action, Cidr, Location, Match, NetMatch, Policy, PortRange, Protocol, Rule};

/// Id of the built-in rule, as events and `status` show it.
pub const RULE_ID: &str = "countersign-control-plane";

/// Where the control plane is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ControlPlaneRule {
    /// Resolved addresses of the server (may be empty while its name does not resolve).
    pub addrs: Vec<IpAddr>,
    pub port: u16,
}

impl ControlPlaneRule {
    /// The prefixes the rule denies: each address, and when the server is on this host's
    /// loopback, the whole loopback and the unspecified addresses (which also reach local
    /// listeners).
    pub fn cidrs(&self) -> Vec<Cidr> {
        let mut texts: Vec<String> = self.addrs.iter().map(IpAddr::to_string).collect();
        if self.addrs.iter().any(IpAddr::is_loopback) {
            texts.extend(["127.0.0.0/8", "::1", "0.0.0.0", "::"].map(String::from));
        }
        let mut cidrs: Vec<Cidr> = texts.iter().filter_map(|t| Cidr::parse(t).ok()).collect();
        cidrs.sort();
        cidrs.dedup();
        cidrs
    }

    /// Puts the rule first in `policy`. Refused when the policy uses the reserved id.
    pub fn inject(&self, policy: &mut Policy) -> Result<(), String> {
        if let Some(r) = policy.rules.iter().find(|r| r.id == RULE_ID) {
            return Err(format!(
                "{}: rule id '{RULE_ID}' is reserved for the built-in rule that keeps agents away from the control plane",
                r.location
            ));
        }
        let cidrs = self.cidrs();
        if cidrs.is_empty() {
            // Nothing resolved: no rule rather than a rule matching every address.
            return Ok(());
        }
        policy.rules.insert(
            0,
            Rule {
                id: RULE_ID.to_owned(),
                description: Some(
                    "built in: agents may not reach the Countersign control plane".to_owned(),
                ),
                agents: Vec::new(),
                matcher: Match::Network(NetMatch {
                    cidrs,
                    ports: vec![PortRange {
                        lo: self.port,
                        hi: self.port,
                    }],
                    protocol: Protocol::Tcp,
                }),
                action: Action::Deny,
                approvers: None,
                location: Location {
                    file: Arc::from("<built-in>"),
                    line: 0,
                },
            },
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
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

    fn policy() -> Policy {
        Policy::from_str("test.yaml", POLICY).expect("valid policy")
    }

    fn connect(addr: &str, port: u16, transport: Transport) -> ConnectAttempt {
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
        }
    }

    #[test]
    fn the_server_is_denied_first_in_every_group() {
        let mut p = policy();
        rule().inject(&mut p).expect("inject");
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
        };
        local.inject(&mut p).expect("inject");
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
        rule().inject(&mut p).expect("inject");
        let compiled = policy::compile(&p, 0, &policy::HostResolver).expect("compile");
        assert_eq!(compiled.rule_ids[0], RULE_ID);
        assert_eq!(compiled.rule_id(1), Some(RULE_ID));
    }

    #[test]
    fn the_id_is_reserved_and_unresolved_names_add_nothing() {
        let text = POLICY.replace("everything-local", RULE_ID);
        let mut p = Policy::from_str("test.yaml", &text).expect("valid policy");
        let e = rule().inject(&mut p).expect_err("reserved");
        assert!(e.contains("reserved"), "{e}");
        let mut p = policy();
        ControlPlaneRule::default()
            .inject(&mut p)
            .expect("nothing to add");
        assert_eq!(p.rules.len(), 1);
    }
}
