//! The VM's root filesystem: busybox, the binaries under test with the shared libraries they
//! link, the kernel's modules the tests need, and an `/init` that prepares the kernel
//! interfaces, runs one command and powers off.

use std::{
    collections::BTreeMap,
    fs,
    io::Write as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{bail, Context as _, Result};

use crate::{
    cpio::{Entry, Writer},
    init, util,
};

/// What goes into an initramfs.
pub struct Spec {
    /// Host binaries and their names in `/bin`.
    pub bins: Vec<(PathBuf, String)>,
    /// Environment of the command.
    pub env: Vec<(String, String)>,
    /// The command and its arguments.
    pub cmd: Vec<String>,
}

/// Writes the gzip-compressed newc archive for `spec` to `out`, with `modules` (the booted
/// kernel's, in load order) under `/lib/modules`, where `/init` loads them.
pub fn build(spec: &Spec, modules: &[PathBuf], out: &Path) -> Result<()> {
    let mut tree = Tree::default();
    for dir in [
        "bin", "sbin", "etc", "dev", "proc", "sys", "tmp", "run", "root", "var/lib", "lib64",
    ] {
        tree.dir(dir);
    }
    tree.0.insert(
        "dev/console".into(),
        Entry::CharDev {
            mode: 0o600,
            major: 5,
            minor: 1,
        },
    );
    add_busybox(&mut tree)?;
    for module in modules {
        let name = module.file_name().context("module file name")?;
        tree.file(
            &format!("lib/modules/{}", name.to_string_lossy()),
            0o644,
            read(module)?,
        );
    }
    let scratch = out.with_extension("strip");
    for (src, name) in &spec.bins {
        // Debug info is most of a Rust test binary's size and useless in the VM.
        util::output(
            Command::new("strip")
                .arg("--strip-debug")
                .arg("-o")
                .arg(&scratch)
                .arg(src),
        )?;
        tree.file(&format!("bin/{name}"), 0o755, read(&scratch)?);
        // PATH has /bin first, but a busybox applet of the same name must not linger in /sbin.
        if matches!(
            tree.0.get(&format!("sbin/{name}")),
            Some(Entry::Symlink { .. })
        ) {
            tree.0.remove(&format!("sbin/{name}"));
        }
        add_libraries(&mut tree, src)?;
    }
    let _ = fs::remove_file(&scratch);
    tree.file(
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
            .to_vec(),
    );
    tree.file(
        "etc/group",
        0o644,
        b"root:x:0:\nnogroup:x:65534:\n".to_vec(),
    );
    tree.file(
        "etc/hosts",
        0o644,
        b"127.0.0.1 localhost\n::1 localhost\n".to_vec(),
    );
    tree.file(
        "init",
        0o755,
        init::script(&spec.env, &spec.cmd)?.into_bytes(),
    );
    tree.write_gzip(out)
}

/// Archive members by path; a later insertion replaces an earlier one (a binary under test
/// replaces the busybox applet of the same name).
#[derive(Default)]
struct Tree(BTreeMap<String, Entry>);

impl Tree {
    fn dir(&mut self, path: &str) {
        let mut prefix = String::new();
        for part in path.split('/') {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            self.0
                .entry(prefix.clone())
                .or_insert(Entry::Dir { mode: 0o755 });
        }
    }

    fn file(&mut self, path: &str, mode: u32, data: Vec<u8>) {
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent);
        }
        self.0.insert(path.to_owned(), Entry::File { mode, data });
    }

    /// BTreeMap order puts every directory before its contents, as cpio requires.
    fn write_gzip(&self, out: &Path) -> Result<()> {
        let file = fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
        let mut gzip = Command::new("gzip")
            .args(["-1", "-n"])
            .stdin(Stdio::piped())
            .stdout(file)
            .spawn()
            .context("starting gzip")?;
        let stdin = gzip.stdin.take().context("gzip stdin")?;
        let mut writer = Writer::new(std::io::BufWriter::new(stdin));
        for (path, entry) in &self.0 {
            writer
                .add(path, entry)
                .with_context(|| format!("archiving {path}"))?;
        }
        writer.finish()?.flush().context("writing to gzip")?;
        // The writer (and with it gzip's stdin) is dropped here, so gzip sees EOF.
        if !gzip.wait().context("waiting for gzip")?.success() {
            bail!("gzip failed writing {}", out.display());
        }
        Ok(())
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn add_busybox(tree: &mut Tree) -> Result<()> {
    let path = util::output(Command::new("sh").args(["-c", "command -v busybox"]))
        .context("busybox is not installed (cargo xtask setup)")?;
    let path = PathBuf::from(path.trim());
    tree.file("bin/busybox", 0o755, read(&path)?);
    add_libraries(tree, &path)?;
    let applets = util::output(Command::new(&path).arg("--list-full"))?;
    for applet in applets.lines() {
        let Some(name) = applet
            .rsplit('/')
            .next()
            .filter(|n| !n.is_empty() && *n != "busybox")
        else {
            continue;
        };
        let dir = if applet.contains("sbin/") {
            "sbin"
        } else {
            "bin"
        };
        tree.0.insert(
            format!("{dir}/{name}"),
            Entry::Symlink {
                target: "/bin/busybox".into(),
            },
        );
    }
    Ok(())
}

/// Copies every library `ldd` names for `binary` (and the dynamic loader) to the same path.
fn add_libraries(tree: &mut Tree, binary: &Path) -> Result<()> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .context("running ldd")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !text.contains('/') {
        return Ok(()); // a static binary: "not a dynamic executable"
    }
    for line in text.lines() {
        if line.contains("not found") {
            bail!("{}: library {}", binary.display(), line.trim());
        }
        let path = match line.split_once("=>") {
            Some((_, right)) => right.trim(),
            None => line.trim(),
        };
        let Some(path) = path
            .split_whitespace()
            .next()
            .filter(|p| p.starts_with('/'))
        else {
            continue; // linux-vdso.so.1 has no file
        };
        let rel = path.trim_start_matches('/').to_owned();
        if !tree.0.contains_key(&rel) {
            tree.file(&rel, 0o755, read(Path::new(path))?);
        }
    }
    Ok(())
}
