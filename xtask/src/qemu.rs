//! The emulator of the test VMs. qemu's multi-threaded TCG before 8.1 can run stale
//! translations of guest code that another vCPU has just rewritten; Linux guests then hang
//! (or oops on `int3`) when a syscall tracepoint is attached (docs/testing.md, "A VM that
//! hangs"). So: setup installs qemu ≥ 8.1 (Debian 12's own is 7.2; bookworm-backports has
//! 10.0), and the VMs use multi-threaded TCG only on a qemu that has the fix.

use std::{fmt, process::Command};

use anyhow::{bail, Context as _, Result};

use crate::{
    private_apt::{self, PrivateApt},
    util,
};

/// The first qemu whose multi-threaded TCG locks pages before translating
/// ("accel/tcg: Always lock pages before translation", qemu 8.1.0).
const FIXED: Version = Version(8, 1);

/// qemu's major and minor version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(u32, u32);

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// The installed `qemu-system-x86_64`'s version.
pub fn version() -> Result<Version> {
    let out = util::output(Command::new("qemu-system-x86_64").arg("--version"))?;
    parse_version(&out).with_context(|| format!("unexpected `qemu-system-x86_64 --version`: {out}"))
}

/// `QEMU emulator version 10.0.2 (Debian …)` → 10.0.
fn parse_version(text: &str) -> Option<Version> {
    let rest = text.split("version ").nth(1)?;
    let mut parts = rest.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some(Version(major, minor))
}

/// Installs qemu from bookworm-backports when the machine's is older than [`FIXED`].
pub fn ensure() -> Result<bool> {
    if version()? >= FIXED {
        return Ok(false);
    }
    let keyring = private_apt::KEYRING;
    let mirror = "http://deb.debian.org/debian";
    let apt = PrivateApt::new(
        &util::cache_dir("qemu-apt"),
        &format!(
            "deb [arch=amd64 signed-by={keyring}] {mirror} bookworm bookworm-updates main\n\
             deb [arch=amd64 signed-by={keyring}] {mirror} bookworm-backports main\n\
             deb [arch=amd64 signed-by={keyring}] http://deb.debian.org/debian-security \
             bookworm-security main\n"
        ),
    )?;
    util::run(apt.command("apt-get").args(["-q", "update"]))?;
    let mut install = apt.command("apt-get");
    install
        .args([
            "install",
            "-y",
            "--no-install-recommends",
            "-t",
            "bookworm-backports",
        ])
        .args(["qemu-system-x86", "qemu-system-common", "qemu-system-data"]);
    util::run(install.env("DEBIAN_FRONTEND", "noninteractive"))?;
    let now = version()?;
    if now < FIXED {
        bail!("qemu {now} is still installed after the install from bookworm-backports; the VM tests need {FIXED} or newer");
    }
    Ok(true)
}

/// How TCG runs the vCPUs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Threads {
    /// One host thread per vCPU (fast; safe only from [`FIXED`] on).
    Multi,
    /// Every vCPU in turn on one host thread: no vCPU translates code while another
    /// writes it, on any qemu, at the price of running the guest's CPUs on one host core.
    Single,
}

/// The `-accel` argument: `COUNTERSIGN_VM_TCG=single|multi` when set (`multi` on an old qemu
/// reproduces the hang, for measurements), otherwise multi-threaded on a fixed qemu.
pub fn accel() -> Result<String> {
    let threads = match std::env::var("COUNTERSIGN_VM_TCG").as_deref() {
        Ok("single") => Threads::Single,
        Ok("multi") => Threads::Multi,
        Ok(other) => bail!("COUNTERSIGN_VM_TCG={other:?}: expected single or multi"),
        Err(_) => match version()? {
            v if v >= FIXED => Threads::Multi,
            v => {
                println!(
                    "vm: qemu {v} runs stale code under multi-threaded TCG: using thread=single \
                     (`cargo xtask setup` installs a fixed qemu)"
                );
                Threads::Single
            }
        },
    };
    Ok(match threads {
        Threads::Multi => "tcg,thread=multi",
        Threads::Single => "tcg,thread=single",
    }
    .to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_and_compared() {
        let debian12 = "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright";
        let backports = "QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)";
        assert_eq!(parse_version(debian12), Some(Version(7, 2)));
        assert_eq!(parse_version(backports), Some(Version(10, 0)));
        assert!(Version(7, 2) < FIXED && Version(8, 0) < FIXED);
        assert!(Version(8, 1) >= FIXED && Version(10, 0) >= FIXED);
        assert_eq!(parse_version("qemu: not found"), None);
    }
}
