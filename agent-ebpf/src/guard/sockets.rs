//! No raw network: packet sockets and raw IPv4/IPv6 sockets bypass the connect and sendmsg
//! hooks, so a watched process may not create them.

use agent_common::tamper::Tamper;
use aya_ebpf::{macros::lsm, programs::LsmContext};

use super::{judge, Attempt, Target};

const AF_INET: i32 = 2;
const AF_INET6: i32 = 10;
const AF_PACKET: i32 = 17;
const SOCK_RAW: i32 = 3;
/// Linux's obsolete packet interface on an inet socket.
const SOCK_PACKET: i32 = 10;
/// The type bits of `type` (the rest are `SOCK_NONBLOCK`, `SOCK_CLOEXEC`).
const SOCK_TYPE_MASK: i32 = 0xf;

/// `socket_create(int family, int type, int protocol, int kern)`.
#[lsm(hook = "socket_create")]
pub fn socket_create(ctx: LsmContext) -> i32 {
    let family: i32 = ctx.arg(0);
    let ty: i32 = ctx.arg(1);
    let protocol: i32 = ctx.arg(2);
    let kern: i32 = ctx.arg(3);
    if kern != 0 || !raw(family, ty & SOCK_TYPE_MASK) {
        return 0;
    }
    judge(Some(Attempt::new(
        Tamper::RawSocket,
        Target {
            dev: (ty & SOCK_TYPE_MASK) as u64,
            family: family as u16,
            protocol: protocol as u16,
            ..Target::default()
        },
    )))
}

#[inline(always)]
fn raw(family: i32, ty: i32) -> bool {
    family == AF_PACKET
        || ((family == AF_INET || family == AF_INET6) && (ty == SOCK_RAW || ty == SOCK_PACKET))
}
