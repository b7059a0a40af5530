//! Everything the suite creates — a temp directory, the cgroups `/cs-bench/run-<pid>/outside`
//! and `…/watched`, a daemon pinned under `<bpffs>/cs-bench-<pid>` — and its removal, which
//! also runs when the suite fails or is interrupted. Names carry the pid, so concurrent runs
//! stay apart and the leftovers of a killed run are swept by the next one.

use std::{
    fs,
    os::unix::process::CommandExt as _,
    panic::{self, AssertUnwindSafe},
    path::PathBuf,
    process::Command,
};

use tests::{agent::Agent, cgroup::Cgroup, env::TestEnv, leftovers, mounts};

use super::Options;
use crate::policy::{self, Spec};

/// Parent of the suite's cgroups, inside the cgroup v2 hierarchy.
const CGROUP_PARENT: &str = "/cs-bench";
/// Prefix of the daemon's bpffs directory.
const BPFFS_PREFIX: &str = "cs-bench-";
/// Agent group of the benchmark policy.
const GROUP: &str = "bench";

/// The suite's resources; see the module documentation.
pub struct World {
    dir: PathBuf,
    cgroup_root: PathBuf,
    run: Cgroup,
    outside: Cgroup,
    watched: Cgroup,
    agent: Agent,
    exe: PathBuf,
    /// Keep the temp directory (daemon logs) when cleaning up: something failed.
    keep_dir: bool,
    /// `clean_up` ran.
    cleaned: bool,
    /// The CPU every workload is pinned to.
    cpu: usize,
}

impl World {
    /// Sweeps leftovers of dead runs, then creates the directory, the two cgroups and the
    /// policy file.
    pub fn new(opts: &Options) -> Result<Self, String> {
        let cgroup_root = mounts::find("cgroup2").ok_or("no cgroup2 file system is mounted")?;
        // The daemon mounts bpffs on /sys/fs/bpf itself when nothing is mounted yet.
        let bpffs = mounts::find("bpf").unwrap_or_else(|| PathBuf::from("/sys/fs/bpf"));
        let exe = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;
        leftovers::sweep(
            &cgroup_root,
            CGROUP_PARENT,
            &bpffs,
            BPFFS_PREFIX,
            &opts.agent,
        );
        let pid = std::process::id();
        let dir = std::env::temp_dir().join(format!("cs-bench-{pid}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let env = TestEnv {
            agent_bin: opts.agent.clone(),
            probe_bin: exe.clone(),
            expect_mode: opts.mode,
            run_env: opts.env.clone(),
            agent_mode: opts.mode.as_str().to_owned(),
            race_attempts: 0,
            ready_timeout: opts.ready_timeout,
            server_bin: None,
            cli_bin: None,
            postgres: None,
        };
        let run = Cgroup::new(&cgroup_root, &format!("{CGROUP_PARENT}/run-{pid}"));
        let world = Self {
            agent: Agent::new(&env, &dir, bpffs.join(format!("{BPFFS_PREFIX}{pid}"))),
            outside: run.child("outside"),
            watched: run.child("watched"),
            run,
            cgroup_root,
            dir,
            exe,
            keep_dir: false,
            cleaned: false,
            cpu: last_cpu()?,
        };
        for cg in [&world.outside, &world.watched] {
            fs::create_dir_all(cg.dir())
                .map_err(|e| format!("creating cgroup {}: {e}", cg.dir().display()))?;
        }
        let yaml = policy::write(&Spec {
            group: GROUP,
            cgroup: world.watched.path(),
            decoy_dir: &world.dir.join("decoys"),
            spared: &[PathBuf::from("/bin/true"), world.exe.clone()],
        })?;
        let path = &world.agent.dirs().policy;
        fs::write(path, yaml).map_err(|e| format!("writing {}: {e}", path.display()))?;
        Ok(world)
    }

    /// A `cs-bench` command whose process joins the watched or the unwatched cgroup before
    /// it execs (so the whole workload, parent and children, runs there), pinned to one CPU:
    /// with two CPUs, migrations and cross-CPU wake-ups (listener thread, forked child)
    /// varied the runs by ±10 % on the host and ±25 % under emulation, pinned by ±2-6 %.
    pub fn command(&self, watched: bool) -> Command {
        let cg = if watched {
            &self.watched
        } else {
            &self.outside
        };
        let mut cmd = cg.command(&self.exe);
        let cpu = self.cpu;
        // SAFETY: sched_setaffinity is a plain system call on a stack value: no allocation,
        // nothing that is unsafe between fork and exec. The mask survives fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(cpu, &mut set);
                if libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            })
        };
        cmd
    }

    /// The CPU the workloads run on.
    pub fn cpu(&self) -> usize {
        self.cpu
    }

    /// Starts the daemon on the benchmark policy (ready, mode checked).
    pub fn start_agent(&mut self) -> Result<(), String> {
        let agent = &mut self.agent;
        // The harness panics on trouble (it was written for tests); here that is an error.
        guarded("starting the daemon", || agent.start())
            .map_err(|e| format!("{e}\n{}", self.agent.diagnostics()))
    }

    /// Reads the counters of the running daemon: nothing may have been refused, and the
    /// hooks must have judged at least `execs` and `connects` (the watched runs of this
    /// round), else nothing was measured. Returns the judged (execs, connects).
    pub fn check_counters(&self, execs: u64, connects: u64) -> Result<(u64, u64), String> {
        let status = guarded("reading the daemon's status", || self.agent.status_json())?;
        let c = &status["counters"];
        let n = |k: &str| c[k].as_u64().unwrap_or(0);
        let (exec, connect) = (n("exec_judged"), n("connect_judged"));
        let refused = n("exec_refused") + n("connect_refused") + n("failed_closed");
        if refused > 0 || exec < execs || connect < connects {
            return Err(format!(
                "the hooks judged {exec} execs and {connect} connects (expected at least \
                 {execs} and {connects}) and refused {refused}: counters {c}"
            ));
        }
        Ok((exec, connect))
    }

    /// Stops the daemon and unloads its programs: the later baseline rounds must not pay
    /// for pinned programs (SIGTERM alone leaves them enforcing).
    pub fn stop_agent(&mut self) -> Result<(), String> {
        let problems = self.agent.shut_down();
        if problems.is_empty() {
            Ok(())
        } else {
            self.keep_dir = true;
            Err(format!("stopping the agent: {}", problems.join("; ")))
        }
    }

    /// Stops and unloads the agent, removes the cgroups and (unless `failed`) the temp
    /// directory. Returns the problems.
    pub fn clean_up(&mut self, failed: bool) -> Vec<String> {
        self.cleaned = true;
        self.keep_dir |= failed;
        let mut problems = self.agent.shut_down();
        if let Err(e) = self.run.remove_tree() {
            problems.push(e);
        }
        // Only succeeds once the last run's cgroup is gone, which is what we want.
        let _ = fs::remove_dir(self.cgroup_root.join(CGROUP_PARENT.trim_start_matches('/')));
        if self.keep_dir || !problems.is_empty() {
            eprintln!("cs-bench: files kept in {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
        problems
    }
}

impl Drop for World {
    /// Last line of defence (a panic in the harness): the normal path calls `clean_up`.
    fn drop(&mut self) {
        if self.cleaned {
            return;
        }
        let problems = self.clean_up(std::thread::panicking());
        if !problems.is_empty() {
            eprintln!("cs-bench: cleanup: {}", problems.join("; "));
        }
    }
}

/// The highest-numbered CPU this process may run on (CPU 0 takes more interrupts).
fn last_cpu() -> Result<usize, String> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity fills it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a set of the size given.
    if unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) } != 0 {
        return Err(format!(
            "sched_getaffinity: {}",
            std::io::Error::last_os_error()
        ));
    }
    let max = 8 * size_of::<libc::cpu_set_t>();
    // SAFETY: CPU_ISSET only reads the set within its size.
    (0..max)
        .rev()
        .find(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .ok_or_else(|| "this process may run on no CPU".to_owned())
}

/// Runs `f`, turning a panic of the harness into an error that names `what`.
fn guarded<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, String> {
    // The message becomes the error; the default hook would print it (and a backtrace) too.
    let hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    panic::set_hook(hook);
    result.map_err(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default();
        format!("{what}: {msg}")
    })
}
