//! What the two benchmark programs, `cs-bench` (hook overhead) and `cs-loop` (approval-loop
//! latency, upload throughput), share: the subcommand dispatch and its exit codes, the
//! harness's panics as errors, Ctrl-C as an orderly stop, the daemon and the pid-named places
//! it runs in, and the statistics and wording of their reports. One copy, so that both programs clean up,
//! fail and count alike.

pub mod cli;
pub mod guard;
pub mod interrupt;
pub mod report;
pub mod rig;
pub mod stats;

pub use cli::Failure;
pub use guard::guarded;
pub use rig::Rig;
