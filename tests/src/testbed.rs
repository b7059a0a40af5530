//! One test's private world: a temp directory with copies of cs-probe as the binaries to
//! guard, an agent cgroup `/cs-test/<name>-<pid>`, a daemon with its own state, run and bpffs
//! directories, and a guard that tears all of it down, even when the test panics.

use std::{
    fs,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
    process::Command,
    thread,
};

use crate::{
    agent::Agent,
    cgroup::{self, Cgroup},
    env::{Mode, TestEnv},
    events::{Event, EventLog},
    leftovers, mounts,
    outcome::Outcome,
    process::{OutputDir, Spawned},
};

/// Parent of every test cgroup, inside the cgroup v2 hierarchy.
pub const CGROUP_PARENT: &str = "/cs-test";
/// Prefix of the bpffs directory of every test's daemon.
pub const BPFFS_PREFIX: &str = "cs-test-";
/// Parent of every test's temp directory.
pub const TMP_ROOT: &str = "/tmp/countersign-tests";
/// Environment variable cs-probe appends target runs to (see `cs-probe` docs).
pub const PROBE_LOG_ENV: &str = "CS_PROBE_LOG";

/// One test's world, named `<name>-<pid>` everywhere (cgroup, bpffs, temp directory). Create it first thing in a test; dropping it cleans up.
#[derive(Debug)]
pub struct TestBed {
    env: TestEnv,
    name: String,
    dir: PathBuf,
    group: Cgroup,
    agent: Agent,
    outputs: OutputDir,
}

/// The test bed's agent group, as [`TestBed::policy_with`] writes it.
#[derive(Clone, Copy, Debug, Default)]
pub struct GroupSettings<'a> {
    /// `monitor: true`: refusals are reported, not made.
    pub monitor: bool,
    /// `accounts:` (bare uids): their processes are judged wherever they run.
    pub accounts: &'a [u32],
    /// `permit:`: the guards the group opts out of.
    pub permit: &'a [&'a str],
    /// `agent_written:`: what at least happens when the session runs a file it wrote.
    pub agent_written: Option<&'a str>,
}

impl TestBed {
    /// `name` is the agent group's name and the last component of its cgroup
    /// (`[a-z0-9][a-z0-9-]*`); `default_probe` is `option_env!("CARGO_BIN_EXE_cs-probe")`.
    ///
    /// Installs two copies of cs-probe, `bin/guarded` and `bin/other` (distinct inodes), and
    /// creates the (empty) agent cgroup. The daemon is not started.
    pub fn new(name: &str, default_probe: Option<&str>) -> Self {
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && name
                    .as_bytes()
                    .first()
                    .is_some_and(u8::is_ascii_alphanumeric),
            "test bed name {name:?} must be a valid agent group name"
        );
        // SAFETY: geteuid has no preconditions.
        assert_eq!(
            unsafe { libc::geteuid() },
            0,
            "the enforcement tests need root"
        );
        let env = TestEnv::from_env(default_probe);
        // The daemon mounts bpffs on /sys/fs/bpf itself when nothing is mounted yet.
        let bpffs = mounts::find("bpf").unwrap_or_else(|| PathBuf::from("/sys/fs/bpf"));
        let pid = std::process::id();
        let dir = PathBuf::from(TMP_ROOT).join(format!("{name}-{pid}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("bin"))
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let cgroup_root = cgroup::root();
        leftovers::sweep(
            &cgroup_root,
            CGROUP_PARENT,
            &bpffs,
            BPFFS_PREFIX,
            &env.agent_bin,
        );
        // The pid in the name keeps concurrent runs (and their cleanup) apart.
        let group = Cgroup::new(&cgroup_root, &format!("{CGROUP_PARENT}/{name}-{pid}"));
        group.create();
        let agent = Agent::new(
            &env,
            &dir,
            bpffs.join(format!("{BPFFS_PREFIX}{name}-{pid}")),
        );
        let outputs = OutputDir::new(dir.join("out"));
        let bed = Self {
            env,
            name: name.to_string(),
            dir,
            group,
            agent,
            outputs,
        };
        bed.install_probe("bin/guarded");
        bed.install_probe("bin/other");
        eprintln!(
            "test bed {name}: dir {}, cgroup {}, expected mode {} ({} run)",
            bed.dir.display(),
            bed.group.path(),
            bed.env.expect_mode,
            bed.env.run_env
        );
        bed
    }

    /// The agent group's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The mode the kernel must be in (`COUNTERSIGN_EXPECT_MODE`).
    pub fn mode(&self) -> Mode {
        self.env.expect_mode
    }

    pub fn env(&self) -> &TestEnv {
        &self.env
    }

    /// The test's temp directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `dir/rel` as a string (parents created), for command lines and policies.
    pub fn path(&self, rel: &str) -> String {
        let path = self.dir.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", parent.display()));
        }
        path.to_string_lossy().into_owned()
    }

    /// Path of `bin/<name>`.
    pub fn bin(&self, name: &str) -> String {
        self.path(&format!("bin/{name}"))
    }

    /// Copies cs-probe to `dir/rel` (a new inode) and returns its path.
    pub fn install_probe(&self, rel: &str) -> String {
        let path = self.path(rel);
        fs::copy(&self.env.probe_bin, &path)
            .unwrap_or_else(|e| panic!("cannot copy cs-probe to {path}: {e}"));
        path
    }

    /// The agent group's cgroup.
    pub fn group(&self) -> &Cgroup {
        &self.group
    }

    /// Creates the descendant `rel` of the agent cgroup (removed with it at the end).
    pub fn sub_cgroup(&self, rel: &str) -> Cgroup {
        let cg = self.group.child(rel);
        cg.create();
        cg
    }

    /// A policy with this test's one agent group (exec and network allowed by default) and
    /// `rules` (YAML list items indented by two spaces).
    pub fn policy(&self, rules: &str) -> String {
        self.policy_with(GroupSettings::default(), rules)
    }

    /// Like [`Self::policy`], with the group's settings.
    pub fn policy_with(&self, group: GroupSettings<'_>, rules: &str) -> String {
        let rules = if rules.trim().is_empty() {
            "rules: []\n".to_string()
        } else {
            format!("rules:\n{rules}")
        };
        let accounts = if group.accounts.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = group.accounts.iter().map(|u| format!("\"{u}\"")).collect();
            format!("    accounts: [{}]\n", list.join(", "))
        };
        let permit = if group.permit.is_empty() {
            String::new()
        } else {
            format!("    permit: [{}]\n", group.permit.join(", "))
        };
        let written = group
            .agent_written
            .map(|a| format!("    agent_written: {a}\n"))
            .unwrap_or_default();
        format!(
            "version: 1\nagents:\n  - name: {}\n    cgroup: {}\n    default: {{ exec: allow, network: allow }}\n    monitor: {}\n{accounts}{permit}{written}{rules}",
            self.name,
            self.group.path(),
            group.monitor,
        )
    }

    /// Writes the policy file the daemon reads. Atomically (write, then rename), so that a
    /// reload never sees half a file.
    pub fn write_policy(&self, yaml: &str) {
        let path = &self.agent.dirs().policy;
        let tmp = path.with_extension("yaml.tmp");
        fs::write(&tmp, yaml)
            .and_then(|()| fs::rename(&tmp, path))
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }

    /// Writes `yaml` as the policy and starts the daemon (ready, mode checked).
    pub fn start_agent(&mut self, yaml: &str) {
        self.write_policy(yaml);
        eprintln!("policy:\n{yaml}");
        self.agent.start();
    }

    pub fn agent(&self) -> &Agent {
        &self.agent
    }

    pub fn agent_mut(&mut self) -> &mut Agent {
        &mut self.agent
    }

    /// The daemon's event log.
    pub fn events(&self) -> EventLog {
        self.agent.events()
    }

    /// `cs-probe ARGS…`, by default run inside the agent cgroup.
    pub fn probe<'a>(&'a self, args: &[&str]) -> ProbeRun<'a> {
        ProbeRun {
            bed: self,
            args: args.iter().map(|a| a.to_string()).collect(),
            cgroup: Some(self.group.clone()),
            cwd: None,
            uid: None,
        }
    }

    /// `cs-probe exec TARGET ARGS…` inside the agent cgroup, run to its end.
    pub fn exec(&self, target_and_args: &[&str]) -> Outcome {
        self.probe(&[&["exec"], target_and_args].concat()).run()
    }

    /// Starts `cmd` as it is (its cgroup is the test process's unless it moves itself).
    pub fn spawn_command(&self, cmd: Command, tag: &str) -> Spawned {
        self.outputs.start(cmd, tag)
    }

    /// Like [`Self::spawn_command`], with stdin a pipe ([`Spawned::take_stdin`]).
    pub fn spawn_piped(&self, cmd: Command, tag: &str) -> Spawned {
        Spawned::start_piped(cmd, &self.outputs.next(tag))
    }

    /// Lines appended by cs-probe target runs (`$CS_PROBE_LOG`).
    pub fn probe_log(&self) -> Vec<String> {
        fs::read_to_string(self.dir.join("probe.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Panics unless `out` is an exec refused as a user sees it in the expected mode.
    pub fn assert_exec_refused(&self, out: &Outcome) {
        out.assert_exec_refused(self.mode());
    }

    /// Waits for the exec event of `out`'s process and checks it is the enforced refusal
    /// `rule` produces in the expected mode.
    pub fn refusal_event(&self, out: &Outcome, rule: &str) -> Event {
        let event = self.events().wait_for_pid("exec", out.pid);
        assert_eq!(
            event.outcome,
            self.mode().exec_refusal_outcome(),
            "outcome of {}",
            event.line
        );
        assert_eq!(event.rule.as_deref(), Some(rule), "rule of {}", event.line);
        assert_eq!(event.mode, self.mode().as_str(), "mode of {}", event.line);
        event
    }

    /// `countersign-agent launch --agent <this bed> --session SESSION -- COMMAND…`, run to its
    /// end (the launcher execs COMMAND in place: the outcome's pid is COMMAND's).
    pub fn launch(&self, session: &str, command: &[&str], tag: &str) -> Outcome {
        let run_dir = self.agent().run_dir();
        let mut cmd = self.agent().command();
        cmd.args(["launch", "--agent", self.name(), "--session", session]);
        cmd.args(["--run-dir", &run_dir, "--"]);
        cmd.args(command);
        self.spawn_command(cmd, tag).wait()
    }

    /// Checks that `event` names session `session` of this bed's group and its cgroup.
    pub fn assert_in_session(&self, event: &Event, session: &str) {
        assert_eq!(
            event.session.as_deref(),
            Some(session),
            "session of {}",
            event.line
        );
        assert_eq!(
            event.cgroup.as_deref(),
            Some(self.group().child(session).path()),
            "cgroup of {}",
            event.line
        );
    }

    /// Everything worth reading when a test fails.
    pub fn diagnostics(&self) -> String {
        format!(
            "=== diagnostics of test bed {} (files kept in {})\n{}",
            self.name,
            self.dir.display(),
            self.agent.diagnostics()
        )
    }
}

impl Drop for TestBed {
    /// Stops the daemon, unloads its programs, removes the test cgroups; keeps the temp
    /// directory when the test failed. A cleanup problem fails an otherwise passing test:
    /// left-over programs or cgroups would make the next tests lie.
    fn drop(&mut self) {
        let panicking = thread::panicking();
        if panicking {
            eprintln!("{}", self.diagnostics());
        }
        let mut problems = self.agent.shut_down();
        if let Err(e) = self.group.remove_tree() {
            problems.push(e);
        }
        // Only succeeds once the last test cgroup is gone, which is what we want.
        let _ = fs::remove_dir(cgroup::root().join(CGROUP_PARENT.trim_start_matches('/')));
        if !panicking && problems.is_empty() {
            let _ = fs::remove_dir_all(&self.dir);
        }
        if !problems.is_empty() {
            let msg = format!("cleanup of test bed {}: {}", self.name, problems.join("; "));
            if panicking {
                eprintln!("{msg}");
            } else {
                panic!("{msg}\n{}", self.diagnostics());
            }
        }
    }
}

/// A cs-probe invocation being set up; see [`TestBed::probe`].
#[derive(Debug)]
pub struct ProbeRun<'a> {
    bed: &'a TestBed,
    args: Vec<String>,
    cgroup: Option<Cgroup>,
    cwd: Option<PathBuf>,
    uid: Option<u32>,
}

impl ProbeRun<'_> {
    /// Runs inside `cgroup` instead of the agent group's own cgroup.
    pub fn in_cgroup(mut self, cgroup: &Cgroup) -> Self {
        self.cgroup = Some(cgroup.clone());
        self
    }

    /// Runs in the test process's own cgroup, outside every agent cgroup.
    pub fn outside(mut self) -> Self {
        self.cgroup = None;
        self
    }

    /// Runs as `uid` (gid the same, no supplementary groups), like an agent's account.
    pub fn as_uid(mut self, uid: u32) -> Self {
        self.uid = Some(uid);
        self
    }

    /// Runs in the working directory `dir`.
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    pub fn spawn(self) -> Spawned {
        let probe = &self.bed.env.probe_bin;
        let mut cmd = match &self.cgroup {
            Some(cg) => cg.command(probe),
            None => Command::new(probe),
        };
        cmd.args(&self.args)
            .env(PROBE_LOG_ENV, self.bed.dir.join("probe.log"));
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        if let Some(uid) = self.uid {
            use std::os::unix::process::CommandExt as _;
            // std drops the supplementary groups when root sets a uid.
            cmd.uid(uid).gid(uid);
        }
        self.bed.outputs.start(cmd, &self.args.join("-"))
    }

    /// Runs to the end.
    pub fn run(self) -> Outcome {
        self.spawn().wait()
    }
}

/// `("major:minor", inode)` of a file, as events report the executed file.
pub fn file_identity(path: &str) -> (String, u64) {
    let meta = fs::metadata(path).unwrap_or_else(|e| panic!("cannot stat {path}: {e}"));
    let dev = meta.dev();
    (
        format!("{}:{}", libc::major(dev), libc::minor(dev)),
        meta.ino(),
    )
}
