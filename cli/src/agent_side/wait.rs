//! Waiting on the agent socket for the decision on an operation, and saying how it ended.

use std::path::Path;
use std::time::{Duration, SystemTime};

use countersign_api::agent_socket::{AgentRequest, AgentResponse, WaitOutcome};

use super::socket;
use crate::commands::show::uses;
use crate::exit::Failure;
use crate::render::clean;
use crate::render::time::{clock_and_relative, span};
use crate::when::parse_rfc3339;

/// Extra time given to the daemon beyond the wait's own timeout before the socket read gives
/// up (the daemon answers `timed_out` itself at `timeout`).
const MARGIN: Duration = Duration::from_secs(30);

/// Waits until the operation `fingerprint` of this session is decided, or `timeout` passes.
pub fn wait(fingerprint: &str, timeout: Duration) -> Result<WaitOutcome, Failure> {
    wait_at(&socket::path(), fingerprint, timeout)
}

/// [`wait`] on the agent socket at `path`.
pub fn wait_at(path: &Path, fingerprint: &str, timeout: Duration) -> Result<WaitOutcome, Failure> {
    let request = AgentRequest::Wait {
        fingerprint: fingerprint.to_owned(),
        timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
    };
    match socket::call_at(path, &request, timeout.saturating_add(MARGIN))? {
        AgentResponse::Waited { outcome } => Ok(outcome),
        other => Err(socket::unexpected(&other)),
    }
}

/// `grant 3f…, 1 use, expires 14:03:12 (in 10m), approved by alice` (None unless granted).
pub fn granted_text(outcome: &WaitOutcome, now: SystemTime) -> Option<String> {
    let WaitOutcome::Granted {
        grant_id,
        uses: n,
        expires_at,
        approvers,
    } = outcome
    else {
        return None;
    };
    let expires = parse_rfc3339(expires_at).map_or_else(
        || clean(expires_at).into_owned(),
        |t| clock_and_relative(t, now),
    );
    let who: Vec<_> = approvers.iter().map(|a| clean(a)).collect();
    Some(format!(
        "grant {}, {}, expires {expires}, approved by {}",
        clean(grant_id),
        uses(*n),
        who.join(", ")
    ))
}

/// The failure for a wait that did not end in a grant (None for a grant).
pub fn not_granted(
    outcome: &WaitOutcome,
    what: &str,
    request: Option<&str>,
    timeout: Duration,
) -> Option<Failure> {
    let request = request.map_or_else(
        || "the request".to_owned(),
        |id| format!("request {}", clean(id)),
    );
    let text = match outcome {
        WaitOutcome::Granted { .. } => return None,
        WaitOutcome::Denied { decided_by, reason } => {
            let who = match decided_by.as_str() {
                "" => String::new(),
                who => format!(" by {}", clean(who)),
            };
            format!("`{what}` was denied{who}: {}", clean(reason))
        }
        WaitOutcome::Expired => {
            format!("{request} for `{what}` expired without a decision")
        }
        WaitOutcome::TimedOut => format!(
            "no decision on `{what}` within {}; {request} is still pending \
             (`countersign why` shows it)",
            span(timeout)
        ),
    };
    Some(Failure::refused(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes() {
        let t = Duration::from_secs(600);
        let denied = WaitOutcome::Denied {
            decided_by: "bob".into(),
            reason: "not during the freeze".into(),
        };
        let f = not_granted(&denied, "kubectl delete pod x", Some("r-1"), t).expect("denied");
        assert_eq!(f.code, 1);
        assert_eq!(
            f.message,
            "`kubectl delete pod x` was denied by bob: not during the freeze"
        );
        let f = not_granted(&WaitOutcome::Expired, "x", Some("r-1"), t).expect("expired");
        assert_eq!(f.message, "request r-1 for `x` expired without a decision");
        let f = not_granted(&WaitOutcome::TimedOut, "x", None, t).expect("timed out");
        assert!(
            f.message
                .starts_with("no decision on `x` within 10m; the request"),
            "{}",
            f.message
        );
        let granted = WaitOutcome::Granted {
            grant_id: "3f00aa11bb22cc33".into(),
            uses: 1,
            expires_at: "2026-11-23T14:10:00.000Z".into(),
            approvers: vec!["alice".into()],
        };
        assert!(not_granted(&granted, "x", None, t).is_none());
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_442_400);
        let text = granted_text(&granted, now).expect("text");
        assert!(
            text.starts_with("grant 3f00aa11bb22cc33, 1 use, expires "),
            "{text}"
        );
        assert!(text.ends_with("(in 10m), approved by alice"), "{text}");
    }
}
