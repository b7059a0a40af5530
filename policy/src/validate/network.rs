//! Network matchers: CIDRs, ports, protocol.

use marked_yaml::Spanned;

use super::Scope;
use crate::{
    cidr::Cidr,
    model::{NetMatch, PortRange, Protocol},
    raw::{items, line, RawNet},
};

pub(super) fn validate(s: &mut Scope, n: &Spanned<RawNet>) -> NetMatch {
    let mut m = NetMatch::default();
    if let Some(d) = &n.domains {
        s.err(
            line(d.span()),
            "domains are not supported yet: the kernel judges connect() by address; \
             list the addresses under cidr (e.g. 203.0.113.7/32)",
        );
    }
    if let Some(c) = &n.cidr {
        let list = items(c);
        if list.is_empty() {
            s.err(
                line(c.span()),
                "cidr: [] matches nothing; omit cidr for any address",
            );
        }
        for (v, l) in list {
            match Cidr::parse(v) {
                Ok(c) if !m.cidrs.contains(&c) => m.cidrs.push(c),
                Ok(_) => {}
                Err(e) => s.err(l, e),
            }
        }
    }
    if let Some(p) = &n.ports {
        let list = items(p);
        if list.is_empty() {
            s.err(
                line(p.span()),
                "ports: [] matches nothing; omit ports for any port",
            );
        }
        for (v, l) in list {
            match parse_ports(v) {
                Ok(r) if !m.ports.contains(&r) => m.ports.push(r),
                Ok(_) => {}
                Err(e) => s.err(l, e),
            }
        }
    }
    if let Some(p) = &n.protocol {
        m.protocol = match p.as_str() {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            "any" => Protocol::Any,
            other => {
                s.err(
                    line(p.span()),
                    format!("unknown protocol '{other}' (expected tcp, udp or any)"),
                );
                Protocol::Any
            }
        };
    }
    if n.cidr.is_none() && n.ports.is_none() && n.domains.is_none() {
        s.err(
            line(n.span()),
            "this network rule matches every connection: give cidr or ports \
             (or set the agent group's default network action instead)",
        );
    }
    m
}

/// `443` or `8000-8100` (inclusive).
pub(crate) fn parse_ports(s: &str) -> Result<PortRange, String> {
    let port = |p: &str| match p.trim().parse::<u32>() {
        Ok(n @ 1..=65535) => Ok(n as u16),
        Ok(_) => Err(format!("port '{s}' is out of range (1-65535)")),
        Err(_) => Err(format!(
            "invalid port '{s}': expected a number 1-65535 or a range like 8000-8100"
        )),
    };
    match s.split_once('-') {
        None => port(s).map(|p| PortRange { lo: p, hi: p }),
        Some((lo, hi)) => {
            let (lo, hi) = (port(lo)?, port(hi)?);
            if lo > hi {
                return Err(format!("port range '{s}' is empty: {lo} is above {hi}"));
            }
            Ok(PortRange { lo, hi })
        }
    }
}
