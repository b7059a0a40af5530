//! Fallback mode's refusal of the sockets that reach around the connect and sendmsg hooks
//! (`agent_common::tamper::socket`), from `cgroup/sock_create`: it sees inet sockets only, so
//! raw IPv4/IPv6 and ICMP sockets are refused and reported, while packet sockets (`AF_PACKET`)
//! are out of its reach (LSM mode's `socket_create` guard refuses all of them).

use agent_common::tamper::socket;
use aya_ebpf::{macros::cgroup_sock, programs::SockContext};

use crate::{guard, watch};

/// `cgroup/sock_create`: 1 lets the socket be created, 0 refuses it (`EPERM`).
#[cgroup_sock(sock_create)]
pub fn sock_create(ctx: SockContext) -> i32 {
    let sk = ctx.sock;
    // SAFETY: the context is valid for the program run; these fields are readable here.
    let (family, ty, protocol) = unsafe { ((*sk).family, (*sk).type_, (*sk).protocol) };
    let (family, ty, protocol) = (family as u16, ty as u16, protocol as u16);
    if !socket::unhooked(family, ty, protocol) {
        return 1;
    }
    let attempt = guard::unhooked_socket(family, ty, protocol);
    match guard::decide(attempt, Ok(watch::by_helper())) {
        0 => 1,
        _ => 0,
    }
}
