//! Builds the kernel programs (`agent-ebpf`) with nightly + bpf-linker through aya-build and
//! leaves the object in OUT_DIR, where `src/ebpf.rs` embeds it.
//!
//! `AYA_BUILD_SKIP=1` skips the eBPF build (for work on the userspace side alone); an empty
//! object is embedded then, and the daemon refuses to start with a clear message.

use std::{env, fs, path::PathBuf};

use anyhow::{Context as _, Result};

fn main() -> Result<()> {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").context("OUT_DIR not set")?);
    let object = out_dir.join("agent-ebpf");
    let skip = env::var("AYA_BUILD_SKIP").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    if skip {
        println!("cargo:rerun-if-env-changed=AYA_BUILD_SKIP");
        fs::write(&object, b"").context("writing the placeholder eBPF object")?;
        return Ok(());
    }
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("../agent-ebpf");
    let root = root.canonicalize().context("locating agent-ebpf")?;
    let root = root.to_str().context("agent-ebpf path is not UTF-8")?;
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "agent-ebpf",
            root_dir: root,
            ..Default::default()
        }],
        aya_build::Toolchain::Nightly,
    )
}
