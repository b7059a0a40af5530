//! No code or policy into the kernel: modules (`init_module`, `finit_module`), kexec images,
//! firmware and security policies loaded by a watched process are refused, whatever they are.

use agent_common::tamper::Tamper;
use aya_ebpf::{macros::lsm, programs::LsmContext};

use super::{judge, Attempt, Target};

/// `kernel_read_file(struct file *file, enum kernel_read_file_id id, bool contents)`.
#[lsm(hook = "kernel_read_file")]
pub fn kernel_read_file(ctx: LsmContext) -> i32 {
    let id: u32 = ctx.arg(1);
    load(id, 0)
}

/// `kernel_load_data(enum kernel_load_data_id id, bool contents)`.
#[lsm(hook = "kernel_load_data")]
pub fn kernel_load_data(ctx: LsmContext) -> i32 {
    let id: u32 = ctx.arg(0);
    load(id, 1)
}

#[inline(always)]
fn load(id: u32, from_memory: u64) -> i32 {
    judge(Some(Attempt::new(
        Tamper::KernelLoad,
        Target {
            ino: id as u64,
            dev: from_memory,
            ..Target::default()
        },
    )))
}
