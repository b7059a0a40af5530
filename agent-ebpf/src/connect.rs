//! Outbound connect enforcement: `cgroup/connect4|6` (TCP, and UDP `connect`) and
//! `cgroup/sendmsg4|6` (unconnected UDP). Refusing returns 0: the caller gets EPERM.
//! Needs kernel 5.8 (ring buffer; the cgroup helpers used here are 5.7).

use agent_common::{
    event::{flags, EventKind},
    hash,
    policy::stats,
};
use aya_ebpf::programs::SockAddrContext;

use crate::{
    emit, enforce,
    grants::Op,
    maps::count,
    rules::{self, Destination},
    watch, Error,
};

const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;

/// Which of the four programs is judging: the address family and the call.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// `cgroup/connect4`.
    Connect4,
    /// `cgroup/connect6`.
    Connect6,
    /// `cgroup/sendmsg4` (unconnected UDP).
    Sendmsg4,
    /// `cgroup/sendmsg6` (unconnected UDP).
    Sendmsg6,
}

impl Hook {
    #[inline(always)]
    fn v6(self) -> bool {
        matches!(self, Self::Connect6 | Self::Sendmsg6)
    }

    #[inline(always)]
    fn sendmsg(self) -> bool {
        matches!(self, Self::Sendmsg4 | Self::Sendmsg6)
    }
}

/// Returns 1 to let the operation through, 0 to refuse it.
#[inline(always)]
pub fn judge(ctx: &SockAddrContext, hook: Hook) -> Result<i32, Error> {
    let Some(w) = watch::by_helper() else {
        return Ok(1);
    };
    let sa = ctx.sock_addr;
    // SAFETY: the context is valid for the program run; these fields are readable in
    // connect/sendmsg programs of the matching family.
    let (addr, port, protocol) = unsafe {
        let mut addr = [0u8; 16];
        if hook.v6() {
            let w0 = (*sa).user_ip6[0].to_ne_bytes();
            let w1 = (*sa).user_ip6[1].to_ne_bytes();
            let w2 = (*sa).user_ip6[2].to_ne_bytes();
            let w3 = (*sa).user_ip6[3].to_ne_bytes();
            addr[0..4].copy_from_slice(&w0);
            addr[4..8].copy_from_slice(&w1);
            addr[8..12].copy_from_slice(&w2);
            addr[12..16].copy_from_slice(&w3);
        } else {
            addr[10] = 0xff;
            addr[11] = 0xff;
            addr[12..16].copy_from_slice(&(*sa).user_ip4.to_ne_bytes());
        }
        let port = u16::from_be((*sa).user_port as u16);
        (addr, port, (*sa).protocol as u16)
    };
    let d = Destination {
        addr,
        port,
        protocol,
    };
    let v = rules::judge_connect(w.generation, w.group.id, &d, w.group.default_net);
    let fp = hash::connect_fingerprint(&addr, port, protocol);
    let op = Op::Connect {
        addr,
        port,
        protocol,
    };
    let o = enforce::outcome(&w, &v, fp, &op);
    count(stats::CONNECT_JUDGED);
    if o.refuse {
        count(stats::CONNECT_REFUSED);
    }
    if o.report {
        if let Some(mut entry) = emit::start(EventKind::Connect, &w, &v, &o) {
            let e = entry.as_mut_ptr();
            // SAFETY: reserved record.
            unsafe {
                (*e).fingerprint = fp;
                (*e).addr = addr;
                (*e).port = port;
                (*e).protocol = protocol;
                (*e).family = if hook.v6() { AF_INET6 } else { AF_INET };
                if hook.sendmsg() {
                    (*e).flags |= flags::SENDMSG;
                }
            }
            entry.submit(0);
        }
    }
    Ok(if o.refuse { 0 } else { 1 })
}
