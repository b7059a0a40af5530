//! Address prefixes. IPv4 prefixes are kept IPv4-mapped (`a.b.c.d/n` is `::ffff:a.b.c.d/96+n`),
//! the form the kernel trie stores, so that one comparison serves IPv4 destinations and
//! IPv4-mapped IPv6 destinations alike.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

/// An address prefix with no host bits set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    /// Prefix length in IPv6 bits (`96 + n` for IPv4 `/n`).
    len: u8,
    /// Network address (IPv4-mapped for IPv4).
    bits: u128,
    /// Written as IPv4: displayed back that way.
    v4: bool,
}

const V4_MAPPED: u128 = 0xffff_u128 << 32;

impl Cidr {
    /// Every address (`::/0`), the prefix of rules without `cidr`.
    pub const ANY: Self = Self {
        len: 0,
        bits: 0,
        v4: false,
    };

    /// Parses `a.b.c.d/n`, `x::y/n`, or a bare address (one host). Host bits must be clear:
    /// the error names the network meant.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let ip: IpAddr = addr.parse().map_err(|_| {
            format!("'{s}' is not an address prefix: expected like 10.0.0.0/8 or fd00::/8")
        })?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let len: u8 = match len {
            None => max,
            Some(l) => match l.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("'{s}': prefix length must be a number 0-{max}")),
            },
        };
        let (bits, len6) = match ip {
            IpAddr::V4(a) => (V4_MAPPED | u128::from(u32::from(a)), len + 96),
            IpAddr::V6(a) => (u128::from(a), len),
        };
        let cidr = Self {
            len: len6,
            bits: bits & mask(len6),
            v4: ip.is_ipv4(),
        };
        if cidr.bits != bits {
            return Err(format!("'{s}' has host bits set: the network is {cidr}"));
        }
        Ok(cidr)
    }

    /// Prefix length in IPv6 bits (IPv4 prefixes count 96 more).
    pub fn prefix_len(&self) -> u32 {
        u32::from(self.len)
    }

    /// Network address, IPv6 or IPv4-mapped, network byte order.
    pub fn octets(&self) -> [u8; 16] {
        self.bits.to_be_bytes()
    }

    /// Whether `addr` (IPv4 taken as IPv4-mapped) lies in the prefix.
    pub fn contains(&self, addr: IpAddr) -> bool {
        u128::from(to_mapped(addr)) & mask(self.len) == self.bits
    }

    /// Whether every address of `other` lies in `self`.
    pub fn covers(&self, other: &Cidr) -> bool {
        self.len <= other.len && other.bits & mask(self.len) == self.bits
    }
}

/// The IPv6 form the kernel sees: IPv4 addresses become `::ffff:a.b.c.d`.
pub fn to_mapped(addr: IpAddr) -> Ipv6Addr {
    match addr {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    }
}

fn mask(len: u8) -> u128 {
    match len {
        0 => 0,
        n => u128::MAX << (128 - u32::from(n)),
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.v4 {
            write!(f, "{}/{}", Ipv4Addr::from(self.bits as u32), self.len - 96)
        } else {
            write!(f, "{}/{}", Ipv6Addr::from(self.bits), self.len)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn ipv4_is_stored_mapped() {
        let c = Cidr::parse("10.20.0.0/16").expect("valid");
        assert_eq!(c.prefix_len(), 112);
        assert_eq!(
            &c.octets()[..12],
            &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]
        );
        assert_eq!(&c.octets()[12..], &[10, 20, 0, 0]);
        assert_eq!(c.to_string(), "10.20.0.0/16");
        assert!(c.contains(ip("10.20.3.4")));
        assert!(c.contains(ip("::ffff:10.20.3.4")));
        assert!(!c.contains(ip("10.21.0.1")));
        assert!(!c.contains(ip("a14:1::")));
    }

    #[test]
    fn ipv6_and_bare_addresses() {
        let c = Cidr::parse("fd00::/8").expect("valid");
        assert!(c.contains(ip("fd12::1")));
        assert!(!c.contains(ip("fe80::1")));
        assert_eq!(
            Cidr::parse("169.254.169.254").expect("host").to_string(),
            "169.254.169.254/32"
        );
        assert_eq!(Cidr::parse("::1").expect("host").prefix_len(), 128);
        assert!(Cidr::parse("0.0.0.0/0")
            .expect("v4 any")
            .contains(ip("1.2.3.4")));
        assert!(!Cidr::parse("0.0.0.0/0")
            .expect("v4 any")
            .contains(ip("2001:db8::1")));
        assert!(Cidr::ANY.contains(ip("2001:db8::1")));
    }

    #[test]
    fn host_bits_name_the_network() {
        let e = Cidr::parse("10.20.1.0/16").expect_err("host bits");
        assert_eq!(
            e,
            "'10.20.1.0/16' has host bits set: the network is 10.20.0.0/16"
        );
        let e = Cidr::parse("fd00::1/8").expect_err("host bits");
        assert!(e.ends_with("the network is fd00::/8"), "{e}");
    }

    #[test]
    fn bad_prefixes() {
        for s in [
            "10.0.0.0/33",
            "fd00::/129",
            "10.0.0/8",
            "x",
            "10.0.0.0/",
            "10.0.0.0/-1",
        ] {
            assert!(Cidr::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn covers() {
        let big = Cidr::parse("10.0.0.0/8").expect("valid");
        let small = Cidr::parse("10.20.0.0/16").expect("valid");
        assert!(big.covers(&small));
        assert!(!small.covers(&big));
        assert!(Cidr::ANY.covers(&small));
        assert!(big.covers(&big));
    }
}
