//! This host's IP addresses (every interface), for the built-in rule that keeps agents away
//! from a control plane running on this host: the agent must not reach it through the LAN
//! address either.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Every IPv4 and IPv6 address of this host's interfaces (loopback included); empty when
/// the kernel cannot list them (a warning says so).
pub fn addresses() -> Vec<IpAddr> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head it allocated into `list`, or fails.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "listing this host's addresses");
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut cur = list;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, valid until freeifaddrs.
        let ifa = unsafe { &*cur };
        // SAFETY: a non-null ifa_addr points to a sockaddr of the family it names, which is
        // at least as large as the structure read for that family.
        if let Some(addr) = unsafe { ifa.ifa_addr.as_ref() }.and_then(|sa| unsafe { ip_of(sa) }) {
            if !out.contains(&addr) {
                out.push(addr);
            }
        }
        cur = ifa.ifa_next;
    }
    // SAFETY: the list came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(list) };
    out
}

/// The address in `sa`, for IPv4 and IPv6.
///
/// # Safety
/// `sa` must be the head of a socket address of the family it names.
unsafe fn ip_of(sa: &libc::sockaddr) -> Option<IpAddr> {
    match i32::from(sa.sa_family) {
        libc::AF_INET => {
            // SAFETY: the caller guarantees a sockaddr_in behind an AF_INET head.
            let sin = unsafe { &*(sa as *const libc::sockaddr).cast::<libc::sockaddr_in>() };
            Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                sin.sin_addr.s_addr,
            ))))
        }
        libc::AF_INET6 => {
            // SAFETY: the caller guarantees a sockaddr_in6 behind an AF_INET6 head.
            let sin6 = unsafe { &*(sa as *const libc::sockaddr).cast::<libc::sockaddr_in6>() };
            Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_among_this_hosts_addresses() {
        let all = addresses();
        assert!(
            all.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)),
            "127.0.0.1 missing from {all:?}"
        );
    }
}
