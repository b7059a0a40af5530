//! `cargo xtask bench`: placeholder until the benchmarks exist.

use anyhow::{bail, Result};

/// Always fails: there are no benchmarks yet.
pub fn run() -> Result<()> {
    bail!("bench: not implemented yet")
}
