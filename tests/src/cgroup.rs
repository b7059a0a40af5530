//! cgroup v2 for the tests: create and remove test cgroups, run a command inside one.

use std::{
    ffi::{CStr, CString},
    fs, io,
    os::unix::{ffi::OsStrExt as _, fs::MetadataExt as _, process::CommandExt as _},
    path::{Path, PathBuf},
    process::Command,
    thread,
    time::{Duration, Instant},
};

use crate::mounts;

/// Mount point of the cgroup v2 hierarchy.
pub fn root() -> PathBuf {
    mounts::require(
        "cgroup2",
        "mount cgroup2 (the host has it at /sys/fs/cgroup/unified, the VM at /sys/fs/cgroup)",
    )
}

/// One cgroup, named by its path inside the hierarchy (as policies and events name it).
#[derive(Clone, Debug)]
pub struct Cgroup {
    root: PathBuf,
    path: String,
}

impl Cgroup {
    /// `path` is absolute inside the hierarchy, e.g. `/cs-test/exec-refused`.
    pub fn new(root: &Path, path: &str) -> Self {
        assert!(
            path.starts_with('/'),
            "cgroup path {path:?} must be absolute"
        );
        Self {
            root: root.to_path_buf(),
            path: path.trim_end_matches('/').to_string(),
        }
    }

    /// Path inside the hierarchy, e.g. `/cs-test/exec-refused`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Directory of the cgroup in the mounted hierarchy.
    pub fn dir(&self) -> PathBuf {
        self.root.join(self.path.trim_start_matches('/'))
    }

    /// A descendant, `rel` being relative (`sub/deeper`). Not created.
    pub fn child(&self, rel: &str) -> Self {
        Self::new(
            &self.root,
            &format!("{}/{}", self.path, rel.trim_matches('/')),
        )
    }

    /// The cgroup id, as `bpf_get_current_cgroup_id()` and events report it (directory inode).
    pub fn id(&self) -> u64 {
        fs::metadata(self.dir())
            .unwrap_or_else(|e| panic!("cgroup {} has no directory: {e}", self.path))
            .ino()
    }

    /// Creates the cgroup and its missing ancestors.
    pub fn create(&self) {
        fs::create_dir_all(self.dir())
            .unwrap_or_else(|e| panic!("cannot create cgroup {}: {e}", self.dir().display()));
    }

    pub fn exists(&self) -> bool {
        self.dir().is_dir()
    }

    /// A command whose process joins this cgroup between fork and exec, so that the exec of
    /// `program` itself already happens inside it.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let procs = CString::new(self.dir().join("cgroup.procs").as_os_str().as_bytes())
            .unwrap_or_else(|_| panic!("NUL byte in cgroup path {}", self.path));
        let mut cmd = Command::new(program);
        // SAFETY: join_self only calls async-signal-safe functions (open, write, close) and
        // does not allocate, as required between fork and exec.
        unsafe { cmd.pre_exec(move || join_self(&procs)) };
        cmd
    }

    /// Pids currently in this cgroup (not its descendants).
    pub fn procs(&self) -> Vec<i32> {
        fs::read_to_string(self.dir().join("cgroup.procs"))
            .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    /// Removes this cgroup and its descendants, deepest first. Processes still inside (all
    /// started by the test that owns the cgroup) are killed first: a cgroup with members cannot
    /// be removed. Missing cgroups are fine.
    pub fn remove_tree(&self) -> Result<(), String> {
        remove_dir_tree(&self.dir())
    }
}

/// Writes "0" (the writing process itself) to `procs`.
fn join_self(procs: &CStr) -> io::Result<()> {
    // SAFETY: procs is a valid NUL-terminated path; the buffer is a static 1-byte string.
    unsafe {
        let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let written = libc::write(fd, b"0".as_ptr().cast(), 1);
        let err = io::Error::last_os_error();
        libc::close(fd);
        if written != 1 {
            return Err(err);
        }
    }
    Ok(())
}

fn remove_dir_tree(dir: &Path) -> Result<(), String> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("cannot list {}: {e}", dir.display())),
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_dir_tree(&entry.path())?;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        kill_members(dir);
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            // EBUSY while killed members are still exiting.
            Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("cannot remove cgroup {}: {e}", dir.display())),
        }
    }
}

fn kill_members(dir: &Path) {
    let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
        // SAFETY: plain kill(2). Every member of a test cgroup was started by that test.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}
