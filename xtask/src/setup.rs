//! `cargo xtask setup`: installs what the build and the tests need on a Debian 12 machine.
//! Every step checks first, so a second run only costs a few process starts.

use std::{fs, process::Command};

use anyhow::{Context as _, Result};

use crate::{linker, postgres, qemu, util};

/// Debian packages: qemu boots the test kernels, busybox fills the initramfs, binutils
/// strips the binaries copied into it, iproute2 and kmod serve the network tests (kmod's
/// depmod also orders the VM's modules, xz-utils unpacks them), btrfs-progs makes the btrfs
/// subvolume of the file identity test, on the host and in the VMs.
const PACKAGES: &[&str] = &[
    "btrfs-progs",
    "qemu-system-x86",
    "busybox-static",
    "cpio",
    "iproute2",
    "binutils",
    "kmod",
    "xz-utils",
];

/// Pseudo filesystems the agent needs on the host: (mount point, filesystem type).
const MOUNTS: &[(&str, &str)] = &[
    ("/sys/fs/bpf", "bpf"),
    ("/sys/kernel/security", "securityfs"),
    ("/sys/kernel/tracing", "tracefs"),
];

/// Runs every setup step.
pub fn run() -> Result<()> {
    packages()?;
    let newer = qemu::ensure()?;
    report(
        &format!("qemu {} (multi-threaded TCG fixed)", qemu::version()?),
        newer,
    );
    stable_components()?;
    machete()?;
    nightly()?;
    linker::ensure()?;
    postgres::install()?;
    mounts()
}

fn report(step: &str, changed: bool) {
    let state = if changed { "done" } else { "already present" };
    println!("setup: {step}: {state}");
}

fn installed(package: &str) -> bool {
    let mut query = Command::new("dpkg-query");
    query.args(["-W", "-f=${Status}", package]);
    util::output(&mut query).is_ok_and(|s| s.trim() == "install ok installed")
}

fn packages() -> Result<()> {
    let missing: Vec<&str> = PACKAGES.iter().copied().filter(|p| !installed(p)).collect();
    if !missing.is_empty() {
        util::run(Command::new("apt-get").args(["-q", "update"]))?;
        let mut install = Command::new("apt-get");
        install
            .args(["install", "-y", "--no-install-recommends"])
            .args(&missing);
        util::run(install.env("DEBIAN_FRONTEND", "noninteractive"))?;
    }
    report(
        &format!("packages ({})", PACKAGES.join(" ")),
        !missing.is_empty(),
    );
    Ok(())
}

/// clippy and rustfmt for the default toolchain (a minimal rustup profile lacks them).
fn stable_components() -> Result<()> {
    let mut missing = Vec::new();
    for (component, probe) in [("clippy", "clippy"), ("rustfmt", "fmt")] {
        if !util::succeeds(Command::new("cargo").args([probe, "--version"])) {
            missing.push(component);
        }
    }
    if !missing.is_empty() {
        util::run(
            Command::new("rustup")
                .args(["component", "add"])
                .args(&missing),
        )?;
    }
    report("clippy and rustfmt", !missing.is_empty());
    Ok(())
}

/// Version of cargo-machete the lint stage runs (pinned: its findings gate the run).
const MACHETE: &str = "0.9.2";

/// cargo-machete, for the lint stage's check that no crate declares a dependency it does not
/// use (about a minute to build, once per machine).
fn machete() -> Result<()> {
    let version = util::output(machete_command().args(["machete", "--version"]));
    let present = version.is_ok_and(|v| v.trim() == MACHETE);
    if !present {
        util::run(Command::new("cargo").args([
            "install",
            "--locked",
            "--version",
            MACHETE,
            "cargo-machete",
        ]))?;
    }
    report(&format!("cargo-machete {MACHETE}"), !present);
    Ok(())
}

/// `cargo`, ready to run `cargo machete`. cargo-machete reads `CARGO_PKG_NAME`, which
/// `cargo xtask` (a `cargo run`) sets, as a sign that it was not started as a cargo
/// subcommand, and then takes the word `machete` for a directory to scan.
pub fn machete_command() -> Command {
    let mut cmd = Command::new("cargo");
    cmd.env_remove("CARGO_PKG_NAME");
    cmd
}

/// The nightly toolchain with `rust-src`, which the eBPF build (`-Z build-std`) needs.
fn nightly() -> Result<()> {
    let mut changed = false;
    if !util::succeeds(Command::new("rustc").args(["+nightly", "--version"])) {
        let mut install = Command::new("rustup");
        install.args(["toolchain", "install", "nightly", "--profile", "minimal"]);
        util::run(install.args(["--component", "rust-src"]))?;
        changed = true;
    }
    let sysroot = util::output(Command::new("rustc").args(["+nightly", "--print", "sysroot"]))?;
    let library = format!("{}/lib/rustlib/src/rust/library", sysroot.trim());
    if !fs::metadata(&library).is_ok_and(|m| m.is_dir()) {
        let mut add = Command::new("rustup");
        util::run(add.args(["component", "add", "rust-src", "--toolchain", "nightly"]))?;
        changed = true;
    }
    report("nightly toolchain with rust-src", changed);
    Ok(())
}

fn mounts() -> Result<()> {
    let table = fs::read_to_string("/proc/self/mounts").context("reading /proc/self/mounts")?;
    let mut changed = Vec::new();
    for &(dir, fstype) in MOUNTS {
        let mounted = table.lines().any(|l| {
            let mut fields = l.split_whitespace().skip(1);
            fields.next() == Some(dir) && fields.next() == Some(fstype)
        });
        if !mounted {
            util::run(Command::new("mount").args(["-t", fstype, fstype, dir]))?;
            changed.push(dir);
        }
    }
    report("bpffs, securityfs and tracefs mounts", !changed.is_empty());
    Ok(())
}
