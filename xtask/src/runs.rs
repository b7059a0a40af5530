//! Which environments a test or benchmark run covers: `--host-only` / `--vm-only`.

use clap::Args;

/// The `--host-only` / `--vm-only` pair shared by `test` and `bench`.
#[derive(Args)]
pub struct Runs {
    /// Only the host run (fallback mode).
    #[arg(long, conflicts_with = "vm_only")]
    host_only: bool,
    /// Only the VM run(s) (LSM mode, and the fallback boot for `test`).
    #[arg(long)]
    vm_only: bool,
}

impl Runs {
    /// Whether the host run is wanted.
    pub fn host(&self) -> bool {
        !self.vm_only
    }

    /// Whether the VM runs are wanted.
    pub fn vm(&self) -> bool {
        !self.host_only
    }
}
