//! No changing the host for everyone: the capabilities in `agent_common::tamper::capability`
//! (reboot and kexec, routes and firewall, raw network, modules) are refused to a watched process even when
//! it holds them. The capability LSM runs first, so an unprivileged caller is refused by the
//! kernel before this hook and leaves no event.

use agent_common::tamper::{capability, Tamper};
use aya_ebpf::{macros::lsm, programs::LsmContext};

use super::{judge, Attempt, Target};

/// `CAP_OPT_NOAUDIT` (`linux/security.h`): the kernel probes without meaning to report.
const CAP_OPT_NOAUDIT: u32 = 0x2;

/// `capable(const struct cred *cred, struct user_namespace *ns, int cap, unsigned int opts)`.
#[lsm(hook = "capable")]
pub fn capable(ctx: LsmContext) -> i32 {
    let cap: i32 = ctx.arg(2);
    if !capability::refused(cap) {
        return 0;
    }
    let opts: u32 = ctx.arg(3);
    judge(Some(Attempt::new(
        Tamper::Capability,
        Target {
            ino: cap as u64,
            quiet: opts & CAP_OPT_NOAUDIT != 0,
            ..Target::default()
        },
    )))
}
