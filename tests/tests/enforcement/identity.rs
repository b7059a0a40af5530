//! A guarded binary is a file, not a name: symlinks, hard links, relative paths, `execveat`
//! on a descriptor and `#!` interpreters all reach the same file and are all refused.

use std::{fs, os::unix::fs::PermissionsExt as _};

use tests::{env::Mode, file_identity, Outcome, TestBed};

use crate::{exec_rule, testbed};

/// Starts the daemon with `bin/guarded` denied; returns its path.
fn start_guarding(t: &mut TestBed) -> String {
    let guarded = t.bin("guarded");
    t.start_agent(&t.policy(&exec_rule("no-guarded", &guarded, "deny")));
    guarded
}

/// `out` was refused, and its event names the guarded file (by inode) as what was executed.
fn assert_refused_as_guarded(t: &TestBed, out: &Outcome) {
    t.assert_exec_refused(out);
    let event = t.refusal_event(out, "no-guarded");
    let (_, ino) = file_identity(&t.bin("guarded"));
    assert_eq!(
        event.ino,
        Some(ino),
        "the event must name the guarded inode: {}",
        event.line
    );
    assert!(
        t.probe_log().is_empty(),
        "the guarded binary ran: {:?}",
        t.probe_log()
    );
}

/// Writes an executable `#!interpreter` script and returns its path.
fn script(t: &TestBed, rel: &str, interpreter: &str) -> String {
    let path = t.path(rel);
    fs::write(&path, format!("#!{interpreter}\n")).expect("write the script");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod the script");
    path
}

#[test]
fn exec_through_a_symlink_is_refused() {
    let mut t = testbed("via-symlink");
    let guarded = start_guarding(&mut t);
    let link = t.path("links/innocent-name");
    std::os::unix::fs::symlink(&guarded, &link).expect("symlink to the guarded binary");
    assert_refused_as_guarded(&t, &t.exec(&[&link, "via", "symlink"]));
}

#[test]
fn exec_through_a_hard_link_is_refused() {
    let mut t = testbed("via-hardlink");
    let guarded = start_guarding(&mut t);
    let link = t.path("links/innocent-name");
    fs::hard_link(&guarded, &link).expect("hard link to the guarded binary");
    assert_refused_as_guarded(&t, &t.exec(&[&link, "via", "hardlink"]));
}

#[test]
fn exec_by_relative_path_is_refused() {
    let mut t = testbed("via-relative");
    start_guarding(&mut t);
    let bin_dir = t.dir().join("bin");
    let out = t
        .probe(&["exec", "./guarded", "relative"])
        .cwd(&bin_dir)
        .run();
    assert_refused_as_guarded(&t, &out);
    t.probe(&["exec", "./other", "relative"])
        .cwd(&bin_dir)
        .run()
        .assert_ran();
}

#[test]
fn execveat_on_a_file_descriptor_is_refused() {
    let mut t = testbed("via-execveat");
    let guarded = start_guarding(&mut t);
    assert_refused_as_guarded(&t, &t.probe(&["execveat-fd", &guarded, "by-fd"]).run());
    // Control: the same route to an unguarded binary works, so the refusal above is real.
    let other = t.probe(&["execveat-fd", &t.bin("other"), "by-fd"]).run();
    other.assert_ran();
    assert!(other.printed("ran by-fd"), "{other}");
}

#[test]
fn script_with_the_guarded_binary_as_interpreter_is_refused() {
    let mut t = testbed("via-interpreter");
    let guarded = start_guarding(&mut t);
    let refused = script(&t, "scripts/refused.sh", &guarded);
    assert_refused_as_guarded(&t, &t.exec(&[&refused, "by-script"]));
    // Control: an unguarded interpreter runs the script (with the script as first argument).
    let allowed = script(&t, "scripts/allowed.sh", &t.bin("other"));
    let out = t.exec(&[&allowed, "by-script"]);
    out.assert_ran();
    assert!(out.printed(&format!("ran {allowed} by-script")), "{out}");
}

/// The dynamic loader of this machine (and of the VMs, whose initramfs copies it to the same
/// path).
const LOADER: &str = "/lib64/ld-linux-x86-64.so.2";

/// `ld.so BINARY` runs a binary without an exec of it: the kernel sees the loader executed,
/// and the loader maps the binary itself. LSM mode refuses the executable mapping (the loader
/// fails, the binary never runs); fallback mode kills the loader on entry to that `mmap`,
/// before it runs the mapped code. Either way a `loader` tamper event is reported, and a binary
/// no rule guards still runs through the loader. A loader of one's own that maps readable and
/// then calls `mprotect(PROT_EXEC)` is refused in LSM mode and not seen in fallback mode
/// (status says `detected`; asserted as documented).
#[test]
fn the_dynamic_loader_does_not_run_a_guarded_binary() {
    assert!(
        std::path::Path::new(LOADER).exists(),
        "{LOADER} is missing: this test needs the dynamic loader"
    );
    let mut t = testbed("via-loader");
    let guarded = start_guarding(&mut t);
    let plain = t.install_probe("bin/plain");
    let lsm = t.mode() == Mode::Lsm;
    assert_eq!(
        t.agent().protection("loader"),
        if lsm { "enforced" } else { "detected" }
    );
    let through = t.exec(&[LOADER, &guarded, "through", "the", "loader"]);
    if !lsm {
        through.assert_exec_refused(Mode::Fallback);
    }
    assert!(
        t.probe_log().is_empty(),
        "the guarded binary ran through the loader: {:?} ({through})",
        t.probe_log()
    );
    let (_, ino) = file_identity(&guarded);
    let target = loader_refusal(&t, &through);
    assert!(
        target.starts_with("guarded ") && target.contains(&format!("inode {ino}")),
        "{target}"
    );
    // A loader of its own: mapped readable, then made executable.
    let own = t.probe(&["tamper", "map-exec", &guarded]).run();
    if lsm {
        own.assert_errno(libc::EPERM);
        loader_refusal(&t, &own);
    } else {
        own.assert_ok();
    }
    // Ordinary work: a binary no rule guards, through the loader and mapped executable.
    t.exec(&[LOADER, &plain, "plain"]).assert_success();
    assert_eq!(t.probe_log().len(), 1, "{:?}", t.probe_log());
    t.probe(&["tamper", "map-exec", &plain]).run().assert_ok();
    // A copy the session made, through the loader: the mapping shows the guard no content,
    // so a file a session wrote is not mapped by the loader run as a program.
    let copy = t.path("work/copy");
    let made = t.exec(&["/bin/sh", "-c", &format!("cp '{guarded}' '{copy}'")]);
    assert!(made.status.success(), "{made}");
    let through = t.exec(&[LOADER, &copy, "copy", "through", "the", "loader"]);
    if !lsm {
        through.assert_exec_refused(Mode::Fallback);
    }
    assert_eq!(t.probe_log().len(), 1, "the copy ran: {:?}", t.probe_log());
    let target = loader_refusal(&t, &through);
    assert!(target.contains("a file a session wrote"), "{target}");
}

/// The `loader` tamper event of `out`'s process, refused (LSM mode) or killed (fallback
/// mode); returns its target.
fn loader_refusal(t: &TestBed, out: &Outcome) -> String {
    let e = t
        .events()
        .wait_for(&format!("tamper loader by {}", out.pid), |e| {
            e.kind == "tamper" && e.tgid == out.pid
        });
    let tamper = e.tamper.clone().expect("tamper field");
    let outcome = match t.mode() {
        Mode::Lsm => "refused",
        Mode::Fallback => "killed",
    };
    assert_eq!(
        (tamper.what.as_str(), e.outcome.as_str()),
        ("loader", outcome),
        "{}",
        e.line
    );
    tamper.target
}

/// A part of the file system test that cannot run: said on a host (whose kernel and tools
/// are the machine's), a failure in a VM (which loads the booted kernel's btrfs and overlayfs
/// modules and has btrfs-progs: the LSM mode is tested there only).
fn not_run(t: &TestBed, fs: &str, why: &str) {
    assert_ne!(
        t.env().run_env,
        "vm",
        "the {fs} part cannot run in this VM: {why}"
    );
    eprintln!("{fs} part not run: {why}");
}

/// `stat()` and the kernel disagree on a file's device on a btrfs subvolume (its anonymous
/// device against the file system's) and on an overlayfs whose layers are on two file systems
/// (a layer's pseudo device against the overlay's). Rules take the kernel's view, so a
/// guarded binary there is refused like anywhere else; with `stat()`'s view the rule would
/// never match (a silent allow).
#[test]
fn guarded_binaries_on_btrfs_subvolumes_and_overlays_are_refused() {
    let mut t = testbed("fs-identity");
    let dir = std::path::PathBuf::from(t.path("fs/x"))
        .parent()
        .expect("dir")
        .to_path_buf();
    let mut guarded = Vec::new();
    let mut mounts = Vec::new();
    match tests::scratch_fs::btrfs_subvolume(&dir) {
        Ok((m, sub)) => {
            mounts.push(m);
            guarded.push(sub.join("tool"));
        }
        Err(why) => not_run(&t, "btrfs", &why),
    }
    match tests::scratch_fs::overlay(&dir) {
        Ok((m, lower, merged)) => {
            mounts.extend(m);
            fs::copy(&t.env().probe_bin, lower.join("tool")).expect("copy into the lower layer");
            guarded.push(merged.join("tool"));
        }
        Err(why) => not_run(&t, "overlayfs", &why),
    }
    if guarded.is_empty() {
        eprintln!("skipped: this kernel can mount neither btrfs nor overlayfs here");
        return;
    }
    for g in &guarded {
        if !g.exists() {
            fs::copy(&t.env().probe_bin, g).expect("copy cs-probe");
        }
    }
    let rules: String = guarded
        .iter()
        .enumerate()
        .map(|(i, g)| exec_rule(&format!("fs-{i}"), &g.display().to_string(), "deny"))
        .collect();
    t.start_agent(&t.policy(&rules));
    for (i, g) in guarded.iter().enumerate() {
        let out = t.exec(&[&g.display().to_string(), "on", "its", "file", "system"]);
        t.assert_exec_refused(&out);
        t.refusal_event(&out, &format!("fs-{i}"));
    }
    assert!(t.probe_log().is_empty(), "{:?}", t.probe_log());
    drop(t);
    drop(mounts);
}
