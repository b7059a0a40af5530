//! Clearing what crashed earlier runs left behind: test cgroups (with their processes) and
//! pinned programs. Every test resource is named `…-<pid of the test process>`; only those of
//! processes that no longer exist are touched, so concurrent runs leave each other alone.

use std::{fs, path::Path, process::Command};

use crate::cgroup::Cgroup;

/// Removes the leftovers of dead runs under the cgroup `parent` and in the bpffs directory
/// `bpffs` (entries named `<prefix>…-<pid>`). Problems are printed, not fatal: a leftover
/// that cannot be removed does not make this test wrong.
pub fn sweep(cgroup_root: &Path, parent: &str, bpffs: &Path, prefix: &str, agent_bin: &Path) {
    for name in dead_entries(&cgroup_root.join(parent.trim_start_matches('/')), "") {
        let cg = Cgroup::new(cgroup_root, &format!("{parent}/{name}"));
        match cg.remove_tree() {
            Ok(()) => eprintln!("removed the leftover cgroup {}", cg.path()),
            Err(e) => eprintln!("cannot remove the leftover cgroup {}: {e}", cg.path()),
        }
    }
    for name in dead_entries(bpffs, prefix) {
        let dir = bpffs.join(&name);
        let unload = Command::new(agent_bin)
            .arg("unload")
            .arg("--bpffs")
            .arg(&dir)
            .output();
        match unload {
            Ok(out) if out.status.success() => eprintln!("unloaded the leftover {}", dir.display()),
            Ok(out) => eprintln!(
                "cannot unload the leftover {}: {}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            Err(e) => eprintln!("cannot run unload for {}: {e}", dir.display()),
        }
        let _ = fs::remove_dir(&dir);
    }
}

/// Names of the entries of `dir` that start with `prefix` and end in `-<pid>` of a process
/// that does not exist.
fn dead_entries(dir: &Path, prefix: &str) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| name.starts_with(prefix))
        .filter(|name| {
            let pid = name.rsplit('-').next().and_then(|p| p.parse::<i32>().ok());
            pid.is_some_and(|pid| pid > 0 && !alive(pid))
        })
        .collect()
}

fn alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks whether the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}
