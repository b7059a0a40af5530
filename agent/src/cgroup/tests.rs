//! Host tests: they create cgroups under the real hierarchy (root only) and clean up.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::*;

/// A scratch cgroup `/countersign-test-<pid>-<name>`, removed (deepest first) on drop.
struct Scratch {
    hierarchy: Hierarchy,
    rel: String,
}

impl Scratch {
    /// `None` (with the reason printed) when not root.
    fn new(name: &str) -> Option<Self> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIP: creating cgroups needs root");
            return None;
        }
        let hierarchy = Hierarchy::discover().expect("a cgroup2 mount");
        let rel = format!("/countersign-test-{}-{name}", std::process::id());
        Some(Self { hierarchy, rel })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let mut dirs: Vec<PathBuf> = Vec::new();
        let mut stack = vec![self.hierarchy.path_of(&self.rel)];
        while let Some(dir) = stack.pop() {
            if let Ok(entries) = std::fs::read_dir(&dir) {
                stack.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
            }
            dirs.push(dir);
        }
        for dir in dirs.iter().rev() {
            remove_eventually(dir);
        }
    }
}

/// rmdir, retried: since 6.15ish a reaped child can leave its cgroup a moment after waitpid.
fn remove_eventually(dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while std::fs::remove_dir(dir).is_err() && dir.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn sleeper() -> Child {
    Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("spawn sleep")
}

#[test]
fn normalize_refuses_escapes() {
    assert_eq!(normalize("/").expect("root"), ("/".to_owned(), 0));
    assert_eq!(normalize("").expect("root"), ("/".to_owned(), 0));
    assert_eq!(normalize("a//b/").expect("a/b"), ("/a/b".to_owned(), 2));
    assert!(normalize("/a/../..").is_err());
    assert!(normalize("./a").is_err());
    let h = Hierarchy::at("/sys/fs/cgroup");
    assert_eq!(
        h.path_of("/countersign/x"),
        Path::new("/sys/fs/cgroup/countersign/x")
    );
    assert_eq!(h.path_of("/"), Path::new("/sys/fs/cgroup/"));
}

#[test]
fn discover_finds_the_mounted_hierarchy() {
    match Hierarchy::discover() {
        Ok(h) => {
            eprintln!("cgroup2 at {}", h.root().display());
            assert!(h.root().join("cgroup.procs").exists());
            let root = h.open("/").expect("root");
            assert_eq!((root.rel_path.as_str(), root.level), ("/", 0));
        }
        Err(CgroupError::NoCgroup2) => eprintln!("SKIP: no cgroup2 mounted here"),
        Err(e) => panic!("discover: {e}"),
    }
}

#[test]
fn create_move_and_remove() {
    let Some(scratch) = Scratch::new("move") else {
        return;
    };
    let h = &scratch.hierarchy;
    let leaf_rel = format!("{}/group/session", scratch.rel);
    let leaf = h.ensure(&leaf_rel).expect("ensure");
    assert_eq!(leaf.level, 3);
    assert_eq!(leaf.rel_path, leaf_rel);
    assert_eq!(leaf.id, std::fs::metadata(&leaf.path).expect("stat").ino());
    assert_eq!(
        h.ensure(&leaf_rel).expect("ensure again"),
        leaf,
        "ensure is idempotent"
    );
    let missing = h
        .open(&format!("{}/nope", scratch.rel))
        .expect_err("missing");
    assert!(matches!(missing, CgroupError::NotFound { .. }), "{missing}");

    let mut child = sleeper();
    let pid = child.id();
    leaf.move_pid(pid).expect("move");
    assert_eq!(h.of_pid(pid).expect("of_pid"), leaf_rel);
    assert_eq!(leaf.pids().expect("pids"), vec![pid]);
    let group = h.open(&format!("{}/group", scratch.rel)).expect("group");
    assert!(!group.remove_if_empty().expect("group has a child"));
    assert!(!leaf.remove_if_empty().expect("leaf has a process"));

    child.kill().expect("kill");
    child.wait().expect("wait");
    let deadline = Instant::now() + Duration::from_secs(2);
    while !leaf.remove_if_empty().expect("remove") {
        assert!(Instant::now() < deadline, "empty leaf cgroup still busy");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!leaf.path.exists());
    assert!(leaf.remove_if_empty().expect("already gone"));
}

#[test]
fn move_errors_name_the_cgroup() {
    let Some(scratch) = Scratch::new("err") else {
        return;
    };
    let cg = scratch.hierarchy.ensure(&scratch.rel).expect("ensure");
    let err = cg.move_pid(u32::MAX).expect_err("no such pid").to_string();
    assert!(
        err.starts_with(&format!(
            "moving pid {} into {}",
            u32::MAX,
            cg.path.display()
        )),
        "{err}"
    );
}

#[test]
fn chains_follow_parents() {
    let mut child = Command::new("sh")
        .args(["-c", "sleep 30; true"])
        .spawn()
        .expect("spawn sh");
    let sh = child.id();
    // Wait for sh to fork, and its child to exec sleep.
    let deadline = Instant::now() + Duration::from_secs(5);
    let is_sleep = |pid: &u32| {
        parent_chain(*pid, 1)
            .first()
            .is_some_and(|p| p.comm == "sleep")
    };
    let sleep_pid = loop {
        let kids = std::fs::read_to_string(format!("/proc/{sh}/task/{sh}/children"));
        let kid = kids
            .ok()
            .and_then(|k| k.split_whitespace().next()?.parse::<u32>().ok());
        if let Some(pid) = kid.filter(is_sleep) {
            break pid;
        }
        assert!(Instant::now() < deadline, "sh never ran sleep");
        std::thread::sleep(Duration::from_millis(10));
    };
    let chain = parent_chain(sleep_pid, 4);
    assert_eq!(chain.len(), 4, "{chain:?}");
    assert_eq!((chain[0].pid, chain[0].comm.as_str()), (sleep_pid, "sleep"));
    assert_eq!((chain[1].pid, chain[1].comm.as_str()), (sh, "sh"));
    assert_eq!(chain[2].pid, std::process::id());
    assert!(
        chain[1].exe.as_deref().is_some_and(|e| e.ends_with("sh")),
        "{chain:?}"
    );
    assert_eq!(parent_chain(sh, 1).len(), 1, "max is respected");
    child.kill().expect("kill");
    child.wait().expect("wait");
    assert!(
        parent_chain(u32::MAX, 5).is_empty(),
        "vanished pid: empty chain"
    );
    let json = serde_json::to_string(&chain[1]).expect("serialize");
    let start = format!("{{\"pid\":{sh},\"comm\":\"sh\",\"exe\":");
    assert!(json.starts_with(&start), "{json}");
}

/// The daemon turns these errors into `anyhow::Error`, which needs them thread-safe.
#[test]
fn errors_are_send_and_sync() {
    fn check<E: std::error::Error + Send + Sync + 'static>() {}
    check::<CgroupError>();
    check::<crate::session::launch::LaunchError>();
    check::<crate::kernel::btf::BtfError>();
    check::<crate::kernel::mode::ModeError>();
    check::<crate::kernel::mounts::MountError>();
}
