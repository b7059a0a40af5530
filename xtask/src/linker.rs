//! bpf-linker built against nightly's own libLLVM (see PLATFORM.md): the linker must use
//! the LLVM major that produced the bitcode, and Debian ships no LLVM 22.

use std::{env, fs, os::unix::fs::symlink, path::PathBuf, process::Command};

use anyhow::{bail, Context as _, Result};

use crate::util;

/// Installs bpf-linker unless a working one linked to nightly's LLVM major is present.
pub fn ensure() -> Result<()> {
    let want = nightly_llvm_major()?;
    let have = installed_llvm_major();
    if have == Some(want) {
        println!("setup: bpf-linker (LLVM {want}): already present");
        return Ok(());
    }
    if let Some(have) = have {
        println!("setup: bpf-linker links LLVM {have}, nightly uses LLVM {want}: rebuilding");
    }
    install(want)?;
    if installed_llvm_major() != Some(want) {
        bail!("bpf-linker was installed but does not run against nightly's LLVM {want}");
    }
    println!("setup: bpf-linker (LLVM {want}): done");
    Ok(())
}

/// The LLVM major of the nightly toolchain (`LLVM version: 22.1.4` in `rustc -vV`).
fn nightly_llvm_major() -> Result<u32> {
    let info = util::output(Command::new("rustc").args(["+nightly", "-vV"]))?;
    let version = info
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))
        .context("`rustc +nightly -vV` names no LLVM version")?;
    leading_number(version).context("unreadable nightly LLVM version")
}

/// The LLVM major of the installed bpf-linker, if it runs and links a shared libLLVM.
fn installed_llvm_major() -> Option<u32> {
    if !util::succeeds(Command::new("bpf-linker").arg("--version")) {
        return None;
    }
    let path = util::output(Command::new("sh").args(["-c", "command -v bpf-linker"])).ok()?;
    let libs = util::output(Command::new("ldd").arg(path.trim())).ok()?;
    // e.g. `libLLVM.so.22.1-rust-1.97.0-nightly => /root/...` or `libLLVM-22.so => ...`
    libs.lines().find_map(|l| {
        let name = l.split_whitespace().next()?;
        let rest = name
            .strip_prefix("libLLVM.so.")
            .or_else(|| name.strip_prefix("libLLVM-"))?;
        leading_number(rest)
    })
}

fn leading_number(s: &str) -> Option<u32> {
    let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Points `$HOME/.cache/countersign/rust-llvm/lib` at nightly's libLLVM and builds
/// bpf-linker against it.
fn install(major: u32) -> Result<()> {
    let sysroot = util::output(Command::new("rustc").args(["+nightly", "--print", "sysroot"]))?;
    let sysroot_lib = PathBuf::from(sysroot.trim()).join("lib");
    let lib = fs::read_dir(&sysroot_lib)
        .with_context(|| format!("listing {}", sysroot_lib.display()))?
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .find(|n| n.to_string_lossy().starts_with("libLLVM.so."))
        .with_context(|| format!("no libLLVM.so.* in {}", sysroot_lib.display()))?;
    let home = env::var_os("HOME").context("HOME is not set")?;
    let prefix = PathBuf::from(home).join(".cache/countersign/rust-llvm");
    let prefix_lib = prefix.join("lib");
    fs::create_dir_all(&prefix_lib)
        .with_context(|| format!("creating {}", prefix_lib.display()))?;
    // Both names: `-lLLVM` finds libLLVM.so at link time, the loader finds the soname.
    for name in [std::ffi::OsStr::new("libLLVM.so"), lib.as_os_str()] {
        let link = prefix_lib.join(name);
        if fs::symlink_metadata(&link).is_ok() {
            fs::remove_file(&link).with_context(|| format!("removing {}", link.display()))?;
        }
        symlink(sysroot_lib.join(&lib), &link)
            .with_context(|| format!("linking {}", link.display()))?;
    }
    let mut cargo = Command::new("cargo");
    cargo.args(["install", "--force", "bpf-linker", "--no-default-features"]);
    cargo
        .args(["--features", &format!("llvm-{major}")])
        .env("LLVM_PREFIX", &prefix);
    util::run(&mut cargo)
}
