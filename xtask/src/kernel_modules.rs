//! The kernel modules a VM loads at boot: what the tests mount that Debian's cloud kernels
//! build as modules (loop devices, btrfs, overlayfs). They are taken from the kernel's own
//! package, with their dependencies, decompressed, and named `NN-name.ko` in an order that
//! loads every dependency first; `/init` loads them with `insmod` in name order.

use std::{
    collections::HashMap,
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context as _, Result};

/// The modules the VM tests need (their dependencies come along).
pub const WANTED: [&str; 3] = ["loop", "btrfs", "overlay"];

/// Copies [`WANTED`] and their dependencies from the unpacked package tree `lib_modules`
/// (`<root>/lib/modules/<version>`) to `out`, in load order. Returns how many.
pub fn extract(lib_modules: &Path, out: &Path) -> Result<usize> {
    let dep_file = lib_modules.join("modules.dep");
    let deps = parse_dep(
        &fs::read_to_string(&dep_file)
            .with_context(|| format!("reading {}", dep_file.display()))?,
    );
    let order = load_order(&deps, &WANTED)?;
    fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for (i, rel) in order.iter().enumerate() {
        let name = module_name(rel);
        let dest = out.join(format!("{i:02}-{name}.ko"));
        decompress(&lib_modules.join(rel), &dest)?;
    }
    Ok(order.len())
}

/// The modules extracted to `dir`, in load order.
pub fn list(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "ko"))
        .collect();
    found.sort();
    Ok(found)
}

/// `modules.dep`: each module's path (relative to the version directory) and the paths of
/// the modules it needs.
fn parse_dep(text: &str) -> HashMap<String, Vec<String>> {
    text.lines()
        .filter_map(|line| {
            let (module, needs) = line.split_once(':')?;
            Some((
                module.trim().to_owned(),
                needs.split_whitespace().map(str::to_owned).collect(),
            ))
        })
        .collect()
}

/// `kernel/fs/btrfs/btrfs.ko.xz` → `btrfs`.
fn module_name(path: &str) -> &str {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.split_once(".ko").map_or(file, |(name, _)| name)
}

/// The modules to load for `wanted`, every dependency before the modules that need it, each
/// once. A wanted module built into the kernel is not in `modules.dep`: an error, since the
/// test that needs it would not know why its mount failed.
fn load_order(deps: &HashMap<String, Vec<String>>, wanted: &[&str]) -> Result<Vec<String>> {
    let by_name: HashMap<&str, &String> = deps.keys().map(|k| (module_name(k), k)).collect();
    let mut order = Vec::new();
    for name in wanted {
        let Some(path) = by_name.get(name) else {
            bail!("modules.dep lists no module {name}");
        };
        visit(deps, path, &mut order, 0)?;
    }
    Ok(order)
}

fn visit(
    deps: &HashMap<String, Vec<String>>,
    module: &str,
    order: &mut Vec<String>,
    depth: usize,
) -> Result<()> {
    if depth > 32 {
        bail!("modules.dep: dependencies of {module} do not end");
    }
    if order.iter().any(|m| m == module) {
        return Ok(());
    }
    for dep in deps.get(module).into_iter().flatten() {
        visit(deps, dep, order, depth + 1)?;
    }
    order.push(module.to_owned());
    Ok(())
}

/// Copies a module, decompressed (Debian 13 ships `.ko.xz`; busybox's `insmod` reads plain
/// modules only).
fn decompress(src: &Path, dest: &Path) -> Result<()> {
    let name = src.to_string_lossy();
    let tool = if name.ends_with(".ko") {
        fs::copy(src, dest).with_context(|| format!("copying {}", src.display()))?;
        return Ok(());
    } else if name.ends_with(".ko.xz") {
        "xz"
    } else if name.ends_with(".ko.zst") {
        "zstd"
    } else {
        bail!(
            "{}: a module compression this runner does not know",
            src.display()
        );
    };
    let out = fs::File::create(dest).with_context(|| format!("creating {}", dest.display()))?;
    let status = Command::new(tool)
        .arg("-dc")
        .arg(src)
        .stdout(out)
        .status()
        .with_context(|| format!("running {tool} (cargo xtask setup)"))?;
    if !status.success() {
        bail!("{tool} -dc {} failed", src.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP: &str = "\
kernel/fs/btrfs/btrfs.ko.xz: kernel/lib/zstd/zstd_compress.ko.xz kernel/lib/raid6/raid6_pq.ko.xz kernel/crypto/xor.ko.xz
kernel/lib/zstd/zstd_compress.ko.xz:
kernel/lib/raid6/raid6_pq.ko.xz:
kernel/crypto/xor.ko.xz: kernel/lib/raid6/raid6_pq.ko.xz
kernel/fs/overlayfs/overlay.ko.xz:
kernel/drivers/block/loop.ko.xz:
";

    #[test]
    fn dependencies_load_first_and_once() {
        let order = load_order(&parse_dep(DEP), &["loop", "btrfs", "overlay"]).expect("order");
        let names: Vec<&str> = order.iter().map(|m| module_name(m)).collect();
        assert_eq!(
            names,
            [
                "loop",
                "zstd_compress",
                "raid6_pq",
                "xor",
                "btrfs",
                "overlay"
            ]
        );
    }

    #[test]
    fn a_module_missing_from_modules_dep_is_an_error() {
        let err = load_order(&parse_dep(DEP), &["ext9"]).expect_err("no such module");
        assert!(err.to_string().contains("no module ext9"), "{err}");
    }
}
