//! No raw network: packet, raw IPv4/IPv6 and ICMP sockets reach around the connect and
//! sendmsg hooks (`agent_common::tamper::socket`), so a watched process may not create them.
//! In fallback mode `crate::sock_create` refuses the inet ones from the cgroup socket hook.

use agent_common::tamper::{socket, Tamper};
use aya_ebpf::{macros::lsm, programs::LsmContext};

use super::{judge, Attempt, Target};

/// The type bits of `type` (the rest are `SOCK_NONBLOCK`, `SOCK_CLOEXEC`).
const SOCK_TYPE_MASK: i32 = 0xf;

/// `socket_create(int family, int type, int protocol, int kern)`.
#[lsm(hook = "socket_create")]
pub fn socket_create(ctx: LsmContext) -> i32 {
    let family: i32 = ctx.arg(0);
    let ty: i32 = ctx.arg(1);
    let protocol: i32 = ctx.arg(2);
    let kern: i32 = ctx.arg(3);
    let (family, ty, protocol) = (family as u16, (ty & SOCK_TYPE_MASK) as u16, protocol as u16);
    if kern != 0 || !socket::unhooked(family, ty, protocol) {
        return 0;
    }
    judge(Some(unhooked_socket(family, ty, protocol)))
}

/// The attempt to create a socket the hooks do not see.
#[inline(always)]
pub fn unhooked_socket(family: u16, ty: u16, protocol: u16) -> Attempt {
    Attempt::new(
        Tamper::RawSocket,
        Target {
            dev: ty as u64,
            family,
            protocol,
            ..Target::default()
        },
    )
}
