//! File systems a test makes for itself — a btrfs subvolume on a loop file, an overlayfs whose
//! layers are on two tmpfs — where `stat()` reports another device than the kernel compares.
//! Each mount is undone (lazily) when its [`Mounted`] is dropped.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// A mount point, unmounted on drop.
pub struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Whether the running kernel has file system `fstype` (`/proc/filesystems`).
pub fn kernel_has(fstype: &str) -> bool {
    std::fs::read_to_string("/proc/filesystems")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split_whitespace().last() == Some(fstype))
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn mount(args: &[&str], at: &Path) -> Mounted {
    std::fs::create_dir_all(at).expect("mount point");
    run(Command::new("mount").args(args).arg(at));
    Mounted(at.to_path_buf())
}

/// A btrfs file system on a loop file under `dir`, with a subvolume; returns the mount and the
/// subvolume's directory. None (with the reason) when this machine cannot make one.
pub fn btrfs_subvolume(dir: &Path) -> Result<(Mounted, PathBuf), String> {
    if !kernel_has("btrfs") {
        return Err("the kernel has no btrfs".into());
    }
    if Command::new("mkfs.btrfs")
        .arg("--version")
        .output()
        .is_err()
    {
        return Err("mkfs.btrfs is not installed (btrfs-progs; cargo xtask setup)".into());
    }
    let image = dir.join("btrfs.img");
    let file = std::fs::File::create(&image).expect("create the image");
    file.set_len(256 << 20).expect("size the image");
    run(Command::new("mkfs.btrfs").arg("-q").arg(&image));
    let at = dir.join("btrfs");
    let mounted = mount(
        &["-t", "btrfs", "-o", "loop", image.to_str().expect("utf-8")],
        &at,
    );
    let sub = at.join("subvolume");
    run(Command::new("btrfs")
        .args(["-q", "subvolume", "create"])
        .arg(&sub));
    Ok((mounted, sub))
}

/// An overlayfs whose lower and upper layers are two tmpfs under `dir`; returns the mounts
/// (overlay first) and the lower layer's and the merged directories.
pub fn overlay(dir: &Path) -> Result<(Vec<Mounted>, PathBuf, PathBuf), String> {
    if !kernel_has("overlay") {
        return Err("the kernel has no overlayfs".into());
    }
    let lower = dir.join("lower");
    let upper = dir.join("upper");
    let lower_fs = mount(&["-t", "tmpfs", "lower"], &lower);
    let upper_fs = mount(&["-t", "tmpfs", "upper"], &upper);
    std::fs::create_dir_all(upper.join("data")).expect("upper dir");
    std::fs::create_dir_all(upper.join("work")).expect("work dir");
    let merged = dir.join("merged");
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.join("data").display(),
        upper.join("work").display()
    );
    let overlay = mount(&["-t", "overlay", "overlay", "-o", &options], &merged);
    Ok((vec![overlay, upper_fs, lower_fs], lower, merged))
}
