//! `countersign request --reason R [--timeout D] [--no-wait] -- CMD ARGS…`: asks ahead for an
//! exec the session has not tried, with a reason for the approvers, then waits for the
//! decision. The ask itself ([`exec_spec`], [`ask`]) is shared with the MCP server's
//! `request_approval` tool.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use countersign_api::agent_socket::{
    AgentRequest, AgentResponse, ConnectSpec, ExecSpec, RequestView,
};

use super::{socket, wait};
use crate::commands::decide::non_empty;
use crate::exit::{Failure, Outcome, OK};
use crate::output::{errln, outln};
use crate::render::clean;
use crate::render::time::clock_and_relative;
use crate::when::{parse_duration, parse_rfc3339};
use countersign_api::display::shell_join;

/// `request` arguments.
#[derive(Debug, clap::Args)]
#[command(
    override_usage = "countersign request --reason TEXT [--timeout DURATION] [--no-wait] -- CMD [ARGS]..."
)]
pub struct RequestArgs {
    /// Why the operation is needed (shown to the approvers).
    #[arg(long, value_parser = non_empty)]
    pub reason: String,
    /// How long to wait for the decision.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Print the request and return without waiting.
    #[arg(long)]
    pub no_wait: bool,
    /// The command and its arguments (after `--`), exactly as it will be run.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<String>,
}

/// How long the daemon may take to forward an ask (it waits up to 3 s for the control plane
/// to name the request).
const ASK_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `request`.
pub fn run(args: &RequestArgs) -> Outcome {
    let spec = exec_spec(&args.command)?;
    let what = shell_join(&args.command);
    let view = ask(&socket::path(), Some(spec), None, &args.reason)?;
    outln!("{}", requested_text(&view, &what, SystemTime::now()));
    if args.no_wait {
        return Ok(OK);
    }
    errln!("countersign: waiting for the decision…");
    let outcome = wait::wait(&view.fingerprint, args.timeout)?;
    if let Some(failure) =
        wait::not_granted(&outcome, &what, view.request_id.as_deref(), args.timeout)
    {
        return Err(failure);
    }
    match wait::granted_text(&outcome, SystemTime::now()) {
        Some(details) => outln!("granted: run it now ({details})"),
        None => outln!("granted: run it now"),
    }
    Ok(OK)
}

/// The exec the daemon is asked about for `argv`: argv[0] resolved as the shell would, from
/// our working directory and `PATH` (see [`resolve`]).
pub fn exec_spec(argv: &[String]) -> Result<ExecSpec, Failure> {
    let Some(program) = argv.first() else {
        return Err(Failure::usage("no command given"));
    };
    let cwd =
        std::env::current_dir().map_err(|e| Failure::refused(format!("current directory: {e}")))?;
    let path = std::env::var_os("PATH");
    let binary = resolve(program, path.as_deref(), &cwd)
        .ok_or_else(|| Failure::usage(format!("{}: command not found", clean(program))))?;
    let binary = binary
        .to_str()
        .ok_or_else(|| Failure::usage(format!("{}: path is not UTF-8", binary.display())))?
        .to_owned();
    Ok(ExecSpec {
        binary,
        argv: argv.to_vec(),
    })
}

/// Asks the daemon listening on `socket` ahead for one operation (`exec` or `connect`), with
/// the agent's `reason` for the approvers; the request as the daemon sees it.
pub fn ask(
    socket: &Path,
    exec: Option<ExecSpec>,
    connect: Option<ConnectSpec>,
    reason: &str,
) -> Result<RequestView, Failure> {
    let request = AgentRequest::Request {
        exec,
        connect,
        reason: reason.to_owned(),
    };
    match socket::call_at(socket, &request, ASK_TIMEOUT)? {
        AgentResponse::Requested { request } => Ok(request),
        other => Err(socket::unexpected(&other)),
    }
}

/// What the daemon will judge: `program` itself when it holds a `/` (made absolute), else the
/// first executable file named `program` in `path` (an empty entry is the current directory).
pub fn resolve(program: &str, path: Option<&OsStr>, cwd: &Path) -> Option<PathBuf> {
    if program.is_empty() {
        return None;
    }
    if program.contains('/') {
        return Some(cwd.join(program));
    }
    std::env::split_paths(path?)
        .map(|dir| {
            if dir.as_os_str().is_empty() {
                cwd.to_owned()
            } else {
                dir
            }
        })
        .map(|dir| cwd.join(dir).join(program))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// `requested approval of `cmd` (rule X): request r-…, pending, expires …`.
pub fn requested_text(view: &RequestView, what: &str, now: SystemTime) -> String {
    let rule = view
        .rule
        .as_deref()
        .map_or_else(String::new, |r| format!(" (rule {})", clean(r)));
    let mut text = format!("requested approval of `{what}`{rule}: ");
    match &view.request_id {
        Some(id) => text.push_str(&format!("request {}, {}", clean(id), clean(&view.state))),
        None => text.push_str("queued until the daemon reaches the control plane"),
    }
    if let Some(t) = view.expires_at.as_deref().and_then(parse_rfc3339) {
        text.push_str(&format!(", expires {}", clock_and_relative(t, now)));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_through_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).expect("mkdir");
        let tool = bin.join("tool");
        std::fs::write(&tool, "#!/bin/sh\n").expect("write");
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let data = bin.join("data");
        std::fs::write(&data, "x").expect("write");
        let path =
            std::env::join_paths(["/nonexistent", bin.to_str().expect("utf-8")]).expect("join");
        let cwd = Path::new("/work");
        assert_eq!(resolve("tool", Some(&path), cwd), Some(tool));
        assert_eq!(resolve("data", Some(&path), cwd), None, "not executable");
        assert_eq!(resolve("missing", Some(&path), cwd), None);
        assert_eq!(resolve("tool", None, cwd), None);
        assert_eq!(
            resolve("./run.sh", Some(&path), cwd),
            Some(PathBuf::from("/work/./run.sh"))
        );
        assert_eq!(
            resolve("/usr/bin/kubectl", Some(&path), cwd),
            Some(PathBuf::from("/usr/bin/kubectl"))
        );
        assert_eq!(resolve("", Some(&path), cwd), None);
    }

    #[test]
    fn request_text() {
        let view = RequestView {
            request_id: Some("r-3f9a1c02de".into()),
            fingerprint: "9a3f00112233aabb".into(),
            operation: "kubectl delete deploy web".into(),
            state: "pending".into(),
            rule: Some("kubectl-mutations".into()),
            expires_at: None,
            reason: None,
        };
        assert_eq!(
            requested_text(&view, "kubectl delete deploy web", SystemTime::now()),
            "requested approval of `kubectl delete deploy web` (rule kubectl-mutations): \
             request r-3f9a1c02de, pending"
        );
        let queued = RequestView {
            request_id: None,
            rule: None,
            ..view
        };
        assert_eq!(
            requested_text(&queued, "x", SystemTime::now()),
            "requested approval of `x`: queued until the daemon reaches the control plane"
        );
    }
}
