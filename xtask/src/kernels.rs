//! `cargo xtask kernels`: Debian cloud kernels for the VM tests, downloaded from Debian's
//! archive into `<repo>/.cache/kernels/<series>/` through a private apt configuration, so the
//! machine's own sources and package lists are never touched.

use std::{
    fmt, fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context as _, Result};
use clap::ValueEnum;

use crate::{
    kernel_modules,
    private_apt::{self, PrivateApt},
    util,
};

/// A kernel series of the test matrix and the Debian release that ships it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Series {
    /// Linux 5.10, Debian 11 (bullseye): the oldest kernel we support.
    #[value(name = "5.10")]
    V5_10,
    /// Linux 6.1, Debian 12 (bookworm).
    #[value(name = "6.1")]
    V6_1,
    /// Linux 6.12, Debian 13 (trixie).
    #[value(name = "6.12")]
    V6_12,
}

impl Series {
    /// Every series, oldest first.
    pub const ALL: [Series; 3] = [Series::V5_10, Series::V6_1, Series::V6_12];

    fn suite(self) -> &'static str {
        match self {
            Series::V5_10 => "bullseye",
            Series::V6_1 => "bookworm",
            Series::V6_12 => "trixie",
        }
    }
}

impl fmt::Display for Series {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Series::V5_10 => "5.10",
            Series::V6_1 => "6.1",
            Series::V6_12 => "6.12",
        })
    }
}

/// Downloads every series that is missing and prints the path of each kernel image.
pub fn run(series: &[Series]) -> Result<()> {
    for &s in series {
        println!("{s}: {}", ensure(s)?.image.display());
    }
    Ok(())
}

/// A kernel to boot: its image and the modules the VM loads at boot, in load order.
pub struct Kernel {
    pub image: PathBuf,
    pub modules: Vec<PathBuf>,
}

/// The kernel of `series`, downloaded first if absent (or cached before its modules were).
pub fn ensure(series: Series) -> Result<Kernel> {
    let dir = util::cache_dir("kernels").join(series.to_string());
    let modules = dir.join("modules");
    let image = match find_image(&dir)? {
        Some(image) if modules.is_dir() => image,
        _ => {
            download(series, &dir)?;
            find_image(&dir)?.with_context(|| format!("no boot/vmlinuz-* in {}", dir.display()))?
        }
    };
    Ok(Kernel {
        image,
        modules: kernel_modules::list(&modules)?,
    })
}

fn find_image(dir: &Path) -> Result<Option<PathBuf>> {
    let boot = dir.join("boot");
    let Ok(entries) = fs::read_dir(&boot) else {
        return Ok(None);
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", boot.display()))?;
        if entry.file_name().to_string_lossy().starts_with("vmlinuz-") {
            return Ok(Some(entry.path()));
        }
    }
    Ok(None)
}

fn download(series: Series, dir: &Path) -> Result<()> {
    let suite = series.suite();
    println!("kernels: fetching the {suite} package lists for Linux {series}");
    let keyring = private_apt::KEYRING;
    let apt = PrivateApt::new(
        &util::cache_dir("kernels").join("apt").join(suite),
        &format!(
            "deb [arch=amd64 signed-by={keyring}] http://deb.debian.org/debian {suite} main\n\
             deb [arch=amd64 signed-by={keyring}] http://deb.debian.org/debian-security \
             {suite}-security main\n"
        ),
    )?;
    util::run(apt.command("apt-get").args(["-q", "update"]))?;
    let debs = dir.join("deb");
    fs::create_dir_all(&debs).with_context(|| format!("creating {}", debs.display()))?;
    // Newest first; a mirror may lack the newest files (seen: a 404 for bullseye-security's
    // pool), so older builds of the same series are tried before giving up.
    let candidates = candidates(&apt, series)?;
    let mut fetched = false;
    for (package, version) in candidates.iter().take(MAX_TRIES) {
        let mut get = apt.command("apt-get");
        get.args(["-q", "download", &format!("{package}={version}")])
            .current_dir(&debs);
        match util::run(&mut get) {
            Ok(()) => {
                fetched = true;
                break;
            }
            // apt has printed why (typically a 404).
            Err(_) => println!(
                "kernels: {package} {version} could not be downloaded; trying an older build"
            ),
        }
    }
    if !fetched {
        bail!("no cloud kernel of Linux {series} could be downloaded from {suite}");
    }
    let deb = fs::read_dir(&debs)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .with_context(|| format!("apt-get download left no .deb in {}", debs.display()))?;
    util::run(Command::new("dpkg").arg("-x").arg(&deb).arg(dir))?;
    let lib_modules = version_dir(dir)?;
    let modules = dir.join("modules");
    if modules.exists() {
        fs::remove_dir_all(&modules).with_context(|| format!("removing {}", modules.display()))?;
    }
    let count = kernel_modules::extract(&lib_modules, &modules)?;
    println!("kernels: Linux {series}: {count} modules kept for the VM");
    // Only boot/ and the modules kept are needed; the module tree is large. The package
    // lists are fetched afresh whenever a kernel is missing.
    for path in [
        dir.join("lib"),
        dir.join("usr"),
        debs,
        apt.root().to_owned(),
    ] {
        if path.exists() {
            fs::remove_dir_all(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    Ok(())
}

/// `lib/modules/<version>` of the package unpacked at `root` (a merged-/usr package's
/// `usr/lib/modules` is linked there), with the `modules.dep` that `depmod` writes at install.
fn version_dir(root: &Path) -> Result<PathBuf> {
    let lib = root.join("lib");
    if !lib.exists() && root.join("usr/lib/modules").is_dir() {
        std::os::unix::fs::symlink("usr/lib", &lib)
            .with_context(|| format!("linking {}", lib.display()))?;
    }
    let base = lib.join("modules");
    let dir = fs::read_dir(&base)
        .with_context(|| format!("listing {}", base.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.join("kernel").is_dir())
        .with_context(|| format!("no kernel module tree under {}", base.display()))?;
    if !dir.join("modules.dep").exists() {
        let version = dir
            .file_name()
            .context("version")?
            .to_string_lossy()
            .into_owned();
        util::run(Command::new("depmod").arg("-b").arg(root).arg(&version))
            .context("depmod (kmod; cargo xtask setup)")?;
    }
    Ok(dir)
}

/// How many package versions to try before giving up.
const MAX_TRIES: usize = 6;

/// Every `linux-image-<series>.*-cloud-amd64-unsigned` build the suite offers, newest first.
/// The names carry an ABI number that changes with every upload, hence the search.
fn candidates(apt: &PrivateApt, series: Series) -> Result<Vec<(String, String)>> {
    let pattern = format!(
        "^linux-image-{}\\.[0-9.+a-z-]*-cloud-amd64-unsigned$",
        series.to_string().replace('.', "\\.")
    );
    let found = util::output(
        apt.command("apt-cache")
            .args(["search", "--names-only", &pattern]),
    )?;
    let names: Vec<&str> = found
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    if names.is_empty() {
        bail!("{} offers no package matching {pattern}", series.suite());
    }
    let table = util::output(apt.command("apt-cache").arg("madison").args(&names))?;
    // `linux-image-… | 5.10.223-1 | http://deb.debian.org/debian bullseye/main amd64 Packages`
    let mut all: Vec<(String, String)> = table
        .lines()
        .filter_map(|l| {
            let mut cols = l.split('|').map(str::trim);
            Some((cols.next()?.to_owned(), cols.next()?.to_owned()))
        })
        .collect();
    all.sort_by_key(|(_, version)| std::cmp::Reverse(version_key(version)));
    all.dedup();
    Ok(all)
}

/// Orders Debian kernel versions (`5.10.262-1`, `6.1.176-1~deb11u1`) by their numbers.
fn version_key(version: &str) -> Vec<u64> {
    version
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_versions_sort_higher() {
        assert!(version_key("5.10.262-1") > version_key("5.10.223-1"));
        assert!(version_key("6.12.117-1") > version_key("6.12.57-1"));
    }
}
