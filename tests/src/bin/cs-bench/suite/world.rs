//! Everything the suite creates — a temp directory, the cgroups `/cs-bench/run-<pid>/outside`
//! and `…/watched`, a daemon pinned under `<bpffs>/cs-bench-<pid>` — and its removal, which
//! also runs when the suite fails or is interrupted. Names carry the pid, so concurrent runs
//! stay apart and the leftovers of a killed run are swept by the next one.

use std::{fs, os::unix::process::CommandExt as _, path::PathBuf, process::Command};

use tests::{
    bench::{guarded, Rig},
    cgroup::Cgroup,
    env::TestEnv,
};

use super::Options;
use crate::policy::{self, Spec};

/// Agent group of the benchmark policy.
const GROUP: &str = "bench";

/// The suite's resources; see the module documentation.
pub struct World {
    /// The daemon, the temp directory and the run's cgroup `/cs-bench/run-<pid>`.
    rig: Rig,
    outside: Cgroup,
    watched: Cgroup,
    exe: PathBuf,
    /// The CPU every workload is pinned to.
    cpu: usize,
}

impl World {
    /// Sweeps leftovers of dead runs, then creates the directory, the two cgroups and the
    /// policy file.
    pub fn new(opts: &Options) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;
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
        // Before the rig: failing here leaves nothing to clean up.
        let cpu = last_cpu()?;
        let rig = Rig::new("cs-bench", &env)?;
        let world = Self {
            outside: rig.cgroup().child("outside"),
            watched: rig.cgroup().child("watched"),
            rig,
            exe,
            cpu,
        };
        for cg in [&world.outside, &world.watched] {
            fs::create_dir_all(cg.dir())
                .map_err(|e| format!("creating cgroup {}: {e}", cg.dir().display()))?;
        }
        let yaml = policy::write(&Spec {
            group: GROUP,
            cgroup: world.watched.path(),
            decoy_dir: &world.rig.dir().join("decoys"),
            spared: &[
                PathBuf::from("/bin/true"),
                PathBuf::from(super::PYTHON),
                world.exe.clone(),
            ],
        })?;
        let path = &world.rig.agent.dirs().policy;
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
        self.rig.start_agent()
    }

    /// Reads the counters of the running daemon: nothing may have been refused, and the
    /// hooks must have judged at least `execs` and `connects` (the watched runs of this
    /// round), else nothing was measured. Returns the judged (execs, connects).
    pub fn check_counters(&self, execs: u64, connects: u64) -> Result<(u64, u64), String> {
        let status = guarded("reading the daemon's status", || {
            self.rig.agent.status_json()
        })?;
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
        let problems = self.rig.agent.shut_down();
        if problems.is_empty() {
            Ok(())
        } else {
            self.rig.keep_files();
            Err(format!("stopping the agent: {}", problems.join("; ")))
        }
    }

    /// Stops and unloads the agent, removes the cgroups and (unless `failed`) the temp
    /// directory. Returns the problems.
    pub fn clean_up(&mut self, failed: bool) -> Vec<String> {
        self.rig.clean_up(failed)
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
