//! `countersign-agent launch`: run a command in a new session cgroup of an agent group. The
//! launcher moves itself into the session and then execs the command, so the command's own
//! exec is the first thing the kernel judges.

use std::convert::Infallible;
use std::ffi::OsString;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use super::account::Account;
use crate::cgroup::{Cgroup, CgroupError, Hierarchy};

/// Environment variable holding the session name, for the launched command.
pub const SESSION_ENV: &str = "COUNTERSIGN_SESSION";
/// Environment variable holding the agent group's name, for the launched command.
pub const AGENT_ENV: &str = "COUNTERSIGN_AGENT";
/// Longest session name (it becomes a cgroup directory name and appears in every event).
pub const MAX_SESSION_LEN: usize = 64;

/// Why a launch did not get as far as the command.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("invalid session name {name:?}: {reason}")]
    InvalidSession { name: String, reason: &'static str },
    #[error("no command to launch")]
    NoCommand,
    #[error(
        "the cgroup {cgroup} of agent group {group} does not exist: is countersign-agent running?"
    )]
    GroupMissing { group: String, cgroup: String },
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    /// EPERM here is usually the kernel refusing the command under the policy (LSM mode).
    #[error("executing {cmd}: {source}")]
    Exec { cmd: String, source: io::Error },
}

impl LaunchError {
    /// Exit status for the launcher, following the shell's convention: 127 when the command
    /// was not found, 126 when it could not be executed, 1 for everything before that.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Exec { source, .. } if source.kind() == io::ErrorKind::NotFound => 127,
            Self::Exec { .. } => 126,
            _ => 1,
        }
    }
}

/// A session cgroup that a process has been moved into.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub name: String,
    pub cgroup: Cgroup,
}

/// Checks a session name: `[A-Za-z0-9._-]`, 1 to 64 characters, not `.` or `..`.
pub fn validate_session(name: &str) -> Result<(), LaunchError> {
    let invalid = |reason| {
        Err(LaunchError::InvalidSession {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() || name.len() > MAX_SESSION_LEN {
        return invalid("must be 1 to 64 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return invalid("only letters, digits, `.`, `_` and `-` are allowed");
    }
    if name == "." || name == ".." {
        return invalid("`.` and `..` are not session names");
    }
    Ok(())
}

/// The default session name: `s-<pid>-<unix seconds>`.
pub fn default_session_name(pid: u32) -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("s-{pid}-{secs}")
}

/// Creates (or joins) `<group cgroup>/<session>` and moves `pid` into it. The group's cgroup
/// must exist: the daemon creates it when it loads the policy.
pub fn enter_session(
    hierarchy: &Hierarchy,
    group_cgroup_rel: &str,
    group_name: Option<&str>,
    session: Option<&str>,
    pid: u32,
) -> Result<Session, LaunchError> {
    let name = session.map_or_else(|| default_session_name(pid), str::to_owned);
    validate_session(&name)?;
    let group = hierarchy.open(group_cgroup_rel).map_err(|e| match e {
        CgroupError::NotFound { rel, .. } => LaunchError::GroupMissing {
            group: group_name.unwrap_or(&rel).to_owned(),
            cgroup: rel,
        },
        e => e.into(),
    })?;
    let cgroup = hierarchy.ensure(&format!("{}/{name}", group.rel_path))?;
    cgroup.move_pid(pid)?;
    Ok(Session { name, cgroup })
}

/// Moves the calling process into a new session of the agent group whose cgroup is
/// `group_cgroup_rel`, announces it on stderr, and execs `cmd` with exactly the environment
/// `env` (see [`super::environment`]) plus `COUNTERSIGN_SESSION` (and `COUNTERSIGN_AGENT`
/// when `group_name` is given). Returns only on failure. Once in the session the launcher
/// stays there, even when the exec fails: in LSM mode no process of a session may move itself
/// out (docs/operations.md, "The guards"), and a refused exec's event names the session, whose
/// retry — the next `launch` of it — must find the same cgroup.
pub fn launch(
    hierarchy: &Hierarchy,
    group_cgroup_rel: &str,
    group_name: Option<&str>,
    session: Option<&str>,
    cmd: &[OsString],
    env: &[(OsString, OsString)],
    account: Option<&Account>,
) -> Result<Infallible, LaunchError> {
    let (program, args) = cmd.split_first().ok_or(LaunchError::NoCommand)?;
    // A command that is not there fails before the session exists: once inside, the
    // launcher could not leave it again to remove it.
    if !findable(program, env) {
        return Err(LaunchError::Exec {
            cmd: program.to_string_lossy().into_owned(),
            source: io::Error::from_raw_os_error(libc::ENOENT),
        });
    }
    let pid = std::process::id();
    let session = enter_session(hierarchy, group_cgroup_rel, group_name, session, pid)?;
    eprintln!(
        "countersign: session {} in agent group {} (cgroup {})",
        session.name,
        group_name.unwrap_or(group_cgroup_rel),
        session.cgroup.rel_path
    );
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(n, v)| (n, v)))
        .env(SESSION_ENV, &session.name);
    match group_name {
        Some(group) => command.env(AGENT_ENV, group),
        // A stale value inherited from another session would lie.
        None => command.env_remove(AGENT_ENV),
    };
    if let Some(a) = account {
        // std drops the supplementary groups when it changes the uid.
        command.uid(a.uid).gid(a.gid).envs(a.env());
    }
    let source = command.exec();
    Err(LaunchError::Exec {
        cmd: program.to_string_lossy().into_owned(),
        source,
    })
}

/// Whether `program` names an existing file, directly or through the `PATH` the command will
/// get (the launcher's own when `env` has none), as `execvp` will look it up.
fn findable(program: &OsString, env: &[(OsString, OsString)]) -> bool {
    use std::os::unix::ffi::OsStrExt as _;
    let path = std::path::Path::new(program);
    if program.as_bytes().contains(&b'/') {
        return path.exists();
    }
    let search = env
        .iter()
        .find(|(name, _)| name == "PATH")
        .map(|(_, value)| value.clone())
        .or_else(|| std::env::var_os("PATH"))
        .unwrap_or_default();
    std::env::split_paths(&search).any(|dir| dir.join(program).is_file())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// Set for a re-run of this test binary that performs a real launch (see [`run_launch`]).
    const CHILD_GROUP: &str = "COUNTERSIGN_TEST_LAUNCH_GROUP";
    const CHILD_CMD: &str = "COUNTERSIGN_TEST_LAUNCH_CMD";

    fn is_root() -> bool {
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() == 0 }
    }

    /// Not a test of its own: the body of the re-run started by [`run_launch`]. `launch`
    /// replaces the process, so it cannot run inside the test harness's process.
    #[test]
    fn child_entry() {
        let (Some(group), Some(cmd)) = (std::env::var_os(CHILD_GROUP), std::env::var_os(CHILD_CMD))
        else {
            return;
        };
        let hierarchy = Hierarchy::discover().expect("cgroup2");
        let cmd = [OsString::from("sh"), OsString::from("-c"), cmd];
        let group = group.to_string_lossy();
        let env = crate::session::environment::session_env(std::env::vars_os(), &[]);
        let err = launch(
            &hierarchy,
            &group,
            Some("test-group"),
            Some("sess-1"),
            &cmd,
            &env,
            None,
        )
        .expect_err("exec failed");
        eprintln!("launch error: {err}");
        std::process::exit(err.exit_code());
    }

    /// Re-runs this test binary as `child_entry` with `sh -c <script>` as the command.
    fn run_launch(group_rel: &str, script: &str) -> std::process::Output {
        Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "session::launch::tests::child_entry",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_GROUP, group_rel)
            .env(CHILD_CMD, script)
            .env(AGENT_ENV, "stale")
            .env("COUNTERSIGN_TOKEN", "a-person's-token")
            .env("SSH_AUTH_SOCK", "/run/user/1000/ssh-agent")
            .output()
            .expect("run child")
    }

    #[test]
    fn launch_execs_inside_the_session() {
        if !is_root() {
            return eprintln!("SKIP: creating cgroups needs root");
        }
        let hierarchy = Hierarchy::discover().expect("cgroup2");
        let group_rel = format!("/countersign-test-{}-launch", std::process::id());
        let group = hierarchy.ensure(&group_rel).expect("group cgroup");

        let out = run_launch(&group_rel, "echo \"session=$COUNTERSIGN_SESSION agent=$COUNTERSIGN_AGENT token=${COUNTERSIGN_TOKEN-none} ssh=${SSH_AUTH_SOCK-none}\"; grep ^0:: /proc/self/cgroup");
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        let session_rel = format!("{group_rel}/sess-1");
        assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
        assert!(
            stdout.contains("session=sess-1 agent=test-group token=none ssh=none\n"),
            "{stdout}"
        );
        assert!(stdout.contains(&format!("0::{session_rel}\n")), "{stdout}");
        let banner =
            format!("countersign: session sess-1 in agent group test-group (cgroup {session_rel})");
        assert!(stderr.contains(&banner), "{stderr}");

        // A command that cannot run: 127, and the session it would have used is gone.
        let session = hierarchy.open(&session_rel).expect("session cgroup");
        session.remove_if_empty().expect("remove session");
        let out = Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "session::launch::tests::child_entry",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_GROUP, &group_rel)
            .env(CHILD_CMD, "unused")
            .env("PATH", "/nonexistent")
            .output()
            .expect("run child");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(127), "{stderr}");
        assert!(
            stderr.contains("launch error: executing sh: No such file or directory"),
            "{stderr}"
        );
        assert!(
            !Path::new(&session.path).exists(),
            "session cgroup left behind"
        );

        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while !group.remove_if_empty().expect("remove group") {
            assert!(
                std::time::Instant::now() < deadline,
                "group cgroup still busy"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    #[test]
    fn missing_group_asks_for_the_daemon() {
        let hierarchy = Hierarchy::at("/nonexistent-cgroup-root");
        let cmd = [OsString::from("true")];
        let err = launch(
            &hierarchy,
            "/countersign/coding-agents",
            Some("coding-agents"),
            None,
            &cmd,
            &[],
            None,
        )
        .expect_err("no group");
        assert_eq!(
            err.to_string(),
            "the cgroup /countersign/coding-agents of agent group coding-agents does not exist: \
             is countersign-agent running?"
        );
        assert_eq!(err.exit_code(), 1);
        assert!(matches!(
            launch(&hierarchy, "/g", None, None, &[], &[], None),
            Err(LaunchError::NoCommand)
        ));
    }

    #[test]
    fn session_names() {
        for good in ["s-1-2", "A.b_c-9", &"x".repeat(64)] {
            validate_session(good).expect(good);
        }
        for bad in ["", ".", "..", "a/b", "a b", "é", &"x".repeat(65)] {
            assert!(validate_session(bad).is_err(), "{bad:?} accepted");
        }
        let name = default_session_name(42);
        assert!(name.starts_with("s-42-"), "{name}");
        validate_session(&name).expect("default name is valid");
    }
}
