//! `countersign exec [--timeout D] -- CMD ARGS…`: runs CMD; when the kernel refuses it under an
//! `approve` rule, says so, waits for the decision and retries once when granted.
//!
//! A refusal looks like this: with BPF LSM the exec fails with EPERM (std reports it from
//! `spawn`, without the child's pid); in fallback mode the exec succeeds and the child is
//! killed with SIGKILL before its first instruction. Either way the daemon is asked `why`.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use countersign_api::agent_socket::{AgentRequest, AgentResponse, Refusal, WaitOutcome};
use countersign_api::verdict::{Action, EventKind};

use super::{socket, wait};
use crate::exit::{Failure, Outcome};
use crate::output::errln;
use crate::render::clean;
use crate::when::{parse_duration, parse_rfc3339};
use countersign_api::display::shell_join;

/// `exec` arguments.
#[derive(Debug, clap::Args)]
#[command(override_usage = "countersign exec [--timeout DURATION] -- CMD [ARGS]...")]
pub struct ExecArgs {
    /// How long to wait for a decision when approval is needed.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// The command and its arguments (after `--`).
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<OsString>,
}

/// Exit status of a command that could not be executed (shell convention).
const CANNOT_EXECUTE: u8 = 126;
/// Exit status of a command that was not found (shell convention).
const NOT_FOUND: u8 = 127;
/// How long the daemon may take to learn of a refusal after the kernel made it.
const REFUSAL_LAG: Duration = Duration::from_secs(2);
/// A SIGKILL later than this after the start is not the fallback mode's exec-time kill.
const KILLED_AT_EXEC: Duration = Duration::from_secs(10);
/// Slack between the daemon's event clock (kernel monotonic time mapped to wall time at
/// daemon start) and ours.
const CLOCK_SLACK: Duration = Duration::from_secs(1);

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempt {
    /// The command ran; its exit status.
    Ran(u8),
    /// `execve` failed with EPERM.
    Eperm,
    /// The child died of SIGKILL; `quick` when right after the start.
    Killed { pid: u32, quick: bool },
}

/// Runs `exec`.
pub fn run(args: &ExecArgs) -> Outcome {
    let what = display(&args.command);
    let started = SystemTime::now();
    let first = attempt(&args.command, &what)?;
    if let Attempt::Ran(code) = first {
        return Ok(code);
    }
    let Some(refusal) = find_refusal(first, started, &what)? else {
        return not_ours(first, &what);
    };
    let rule = match &refusal.rule {
        Some(id) => format!("rule {}", clean(id)),
        None => "the agent group's default".to_owned(),
    };
    if refusal.action != Action::Approve {
        return Err(Failure::refused(format!(
            "`{what}` refused by {rule} (no approval possible)"
        )));
    }
    let request_id = refusal.request.as_ref().and_then(|r| r.request_id.clone());
    let request = match &request_id {
        Some(id) => format!("request {}", clean(id)),
        None => "request being raised".to_owned(),
    };
    errln!("countersign: `{what}` needs approval ({rule}, {request}); waiting…");
    let outcome = wait::wait(&refusal.fingerprint, args.timeout)?;
    if let Some(failure) = wait::not_granted(&outcome, &what, request_id.as_deref(), args.timeout) {
        return Err(failure);
    }
    if let WaitOutcome::Granted { approvers, .. } = &outcome {
        let who: Vec<_> = approvers.iter().map(|a| clean(a)).collect();
        errln!("countersign: approved by {}; running it", who.join(", "));
    }
    match attempt(&args.command, &what)? {
        Attempt::Ran(code) => Ok(code),
        _ => Err(Failure::refused(format!(
            "`{what}` was refused again after the grant (used up, revoked or expired meanwhile)"
        ))),
    }
}

/// The command line as typed, shell-quoted.
fn display(command: &[OsString]) -> String {
    let words: Vec<String> = command
        .iter()
        .map(|w| w.to_string_lossy().into_owned())
        .collect();
    shell_join(&words)
}

fn attempt(command: &[OsString], what: &str) -> Result<Attempt, Failure> {
    let Some((program, args)) = command.split_first() else {
        return Err(Failure::usage("no command given"));
    };
    let start = Instant::now();
    let mut child = match Command::new(program).args(args).spawn() {
        Ok(child) => child,
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => return Ok(Attempt::Eperm),
        Err(e) => {
            let code = match e.kind() {
                std::io::ErrorKind::NotFound => NOT_FOUND,
                _ => CANNOT_EXECUTE,
            };
            return Err(Failure {
                code,
                message: format!("{}: {e}", clean(&program.to_string_lossy())),
            });
        }
    };
    let pid = child.id();
    let status = child
        .wait()
        .map_err(|e| Failure::refused(format!("waiting for `{what}`: {e}")))?;
    Ok(match status.signal() {
        Some(libc::SIGKILL) => Attempt::Killed {
            pid,
            quick: start.elapsed() < KILLED_AT_EXEC,
        },
        _ => Attempt::Ran(exit_code(status)),
    })
}

/// A child's status as ours: its exit code, or 128 + the signal that ended it.
fn exit_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code).unwrap_or(1),
        (None, Some(sig)) => u8::try_from(128 + sig).unwrap_or(255),
        (None, None) => 1,
    }
}

/// Asks the daemon why the attempt failed, until it knows (it learns of refusals a moment
/// after the kernel made them). None: not a refusal of this session.
fn find_refusal(
    attempt: Attempt,
    started: SystemTime,
    what: &str,
) -> Result<Option<Refusal>, Failure> {
    let (pid, patience) = match attempt {
        Attempt::Killed { pid, quick } => {
            (Some(pid), if quick { REFUSAL_LAG } else { Duration::ZERO })
        }
        _ => (None, REFUSAL_LAG),
    };
    let deadline = Instant::now() + patience;
    loop {
        let answer = match socket::call(&AgentRequest::Why { pid }, Duration::from_secs(10)) {
            Ok(answer) => answer,
            // Outside an agent session (or a daemon refusing to answer): not a refusal we
            // can wait on.
            Err(f) if f.code == crate::exit::REFUSED => return Ok(None),
            Err(f) => {
                return Err(Failure {
                    code: f.code,
                    message: format!("`{what}` was refused or killed, and {}", f.message),
                })
            }
        };
        match answer {
            AgentResponse::Refusal {
                refusal: Some(refusal),
            } if is_ours(&refusal, pid, started) => return Ok(Some(refusal)),
            AgentResponse::Refusal { .. } => {}
            other => return Err(socket::unexpected(&other)),
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `refusal` is the one of this attempt: the child's pid when known, else the
/// session's latest exec refusal made after we started.
fn is_ours(refusal: &Refusal, pid: Option<u32>, started: SystemTime) -> bool {
    // `exec`, or `argv_mismatch` (an exec killed for rewriting its arguments); never a
    // connect of some other process.
    if refusal.kind == EventKind::Connect {
        return false;
    }
    match pid {
        Some(pid) => refusal.pid == pid,
        None => parse_rfc3339(&refusal.time)
            .is_none_or(|t| t >= started.checked_sub(CLOCK_SLACK).unwrap_or(started)),
    }
}

/// The attempt failed for a reason of its own: report it as a shell would.
fn not_ours(attempt: Attempt, what: &str) -> Outcome {
    match attempt {
        Attempt::Ran(code) => Ok(code),
        Attempt::Eperm => Err(Failure {
            code: CANNOT_EXECUTE,
            message: format!("`{what}`: Operation not permitted"),
        }),
        Attempt::Killed { .. } => Ok(u8::try_from(128 + libc::SIGKILL).unwrap_or(137)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(kind: &str, pid: u32, time: &str) -> Refusal {
        Refusal {
            time: time.into(),
            pid,
            kind: EventKind::parse(kind).expect("a kind"),
            action: Action::Approve,
            rule: Some("kubectl-mutations".into()),
            fingerprint: "9a3f00112233aabb".into(),
            operation: "kubectl delete deploy web".into(),
            request: None,
        }
    }

    #[test]
    fn which_refusal_is_ours() {
        let started = parse_rfc3339("2026-11-23T14:00:10.000Z").expect("time");
        let r = refusal("exec", 42, "2026-11-23T14:00:10.200Z");
        assert!(is_ours(&r, Some(42), started));
        assert!(!is_ours(&r, Some(43), started));
        assert!(is_ours(&r, None, started));
        let old = refusal("exec", 42, "2026-11-23T13:59:00.000Z");
        assert!(!is_ours(&old, None, started));
        let skewed = refusal("exec", 42, "2026-11-23T14:00:09.500Z");
        assert!(is_ours(&skewed, None, started));
        assert!(!is_ours(
            &refusal("connect", 42, "2026-11-23T14:00:10.200Z"),
            Some(42),
            started
        ));
    }

    #[test]
    fn exit_statuses() {
        assert_eq!(exit_code(ExitStatus::from_raw(0)), 0);
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(ExitStatus::from_raw(libc::SIGTERM)), 128 + 15);
        assert_eq!(
            not_ours(
                Attempt::Killed {
                    pid: 1,
                    quick: true
                },
                "x"
            ),
            Ok(137)
        );
        assert_eq!(not_ours(Attempt::Eperm, "x").map_err(|f| f.code), Err(126));
    }

    #[test]
    fn runs_commands_and_reports_their_status() {
        let cmd = |args: &[&str]| args.iter().map(OsString::from).collect::<Vec<_>>();
        let args = ExecArgs {
            timeout: Duration::from_secs(1),
            command: cmd(&["sh", "-c", "exit 7"]),
        };
        assert_eq!(run(&args), Ok(7));
        let missing = ExecArgs {
            timeout: Duration::from_secs(1),
            command: cmd(&["/nonexistent/countersign-test"]),
        };
        assert_eq!(run(&missing).map_err(|f| f.code), Err(127));
        assert_eq!(
            display(&cmd(&["rm", "-rf", "/tmp/a b"])),
            "rm -rf '/tmp/a b'"
        );
    }
}
