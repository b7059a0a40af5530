//! `countersign why [--json]`: the latest refusal of the caller's own session, and what can
//! be done about it.

use std::time::{Duration, SystemTime};

use countersign_api::agent_socket::{AgentRequest, AgentResponse, Refusal};
use countersign_api::verdict::Action;

use super::socket;
use crate::exit::{Failure, Outcome, OK};
use crate::output::{out, outln};
use crate::render::clean;
use crate::render::time::clock_and_relative;
use crate::when::parse_rfc3339;

/// `why` arguments.
#[derive(Debug, clap::Args)]
pub struct WhyArgs {
    /// Ask about this process instead of the session's latest refusal.
    #[arg(long)]
    pub pid: Option<u32>,
    /// Print the refusal as JSON (`null` when there is none).
    #[arg(long)]
    pub json: bool,
}

/// Runs `why`.
pub fn run(args: &WhyArgs) -> Outcome {
    let refusal = match socket::call(
        &AgentRequest::Why { pid: args.pid },
        Duration::from_secs(10),
    )? {
        AgentResponse::Refusal { refusal } => refusal,
        other => return Err(socket::unexpected(&other)),
    };
    if args.json {
        let text = serde_json::to_string_pretty(&refusal)
            .map_err(|e| Failure::refused(format!("encoding JSON: {e}")))?;
        outln!("{text}");
        return Ok(OK);
    }
    match refusal {
        None => outln!("nothing was refused in this session"),
        Some(r) => out!("{}", explain(&r, SystemTime::now())),
    }
    Ok(OK)
}

/// The text of `why`.
pub fn explain(r: &Refusal, now: SystemTime) -> String {
    let when = parse_rfc3339(&r.time).map_or_else(
        || clean(&r.time).into_owned(),
        |t| clock_and_relative(t, now),
    );
    let rule = r.rule.as_deref().map_or_else(
        || "the agent group's default".to_owned(),
        |id| format!("rule {}", clean(id)),
    );
    let mut out = format!(
        "refused      {} `{}` (pid {}, {when})\nby           {rule}: {}\n",
        r.kind,
        clean(&r.operation),
        r.pid,
        r.action
    );
    if r.action != Action::Approve {
        out.push_str("             no approval possible\n");
    }
    if let Some(req) = &r.request {
        let mut line = match &req.request_id {
            Some(id) => format!("request      {} {}", clean(id), clean(&req.state)),
            None => "request      not yet at the control plane".to_owned(),
        };
        if let Some(t) = req.expires_at.as_deref().and_then(parse_rfc3339) {
            line.push_str(&format!(", expires {}", clock_and_relative(t, now)));
        }
        if let Some(reason) = &req.reason {
            line.push_str(&format!(": {}", clean(reason)));
        }
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str(&format!("fingerprint  {}\n", clean(&r.fingerprint)));
    if r.action == Action::Approve {
        out.push_str(
            "retry with `countersign exec -- CMD…` to wait for the decision and run it once granted\n",
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use countersign_api::agent_socket::RequestView;

    #[test]
    fn explains_a_refusal() {
        let r = Refusal {
            time: "2026-11-23T14:00:08.750Z".into(),
            pid: 4250,
            kind: countersign_api::verdict::EventKind::Exec,
            action: Action::Approve,
            rule: Some("kubectl-mutations".into()),
            fingerprint: "9a3f00112233aabb".into(),
            operation: "kubectl delete deploy web".into(),
            request: Some(RequestView {
                request_id: Some("r-3f9a1c02de".into()),
                fingerprint: "9a3f00112233aabb".into(),
                operation: "kubectl delete deploy web".into(),
                state: "pending".into(),
                rule: Some("kubectl-mutations".into()),
                expires_at: None,
                reason: None,
            }),
        };
        let text = explain(&r, SystemTime::now());
        assert!(
            text.starts_with("refused      exec `kubectl delete deploy web` (pid 4250, "),
            "{text}"
        );
        assert!(
            text.contains("by           rule kubectl-mutations: approve\n"),
            "{text}"
        );
        assert!(
            text.contains("request      r-3f9a1c02de pending\n"),
            "{text}"
        );
        let deny = Refusal {
            action: Action::Deny,
            rule: None,
            request: None,
            ..r
        };
        let text = explain(&deny, SystemTime::now());
        assert!(text.contains("the agent group's default: deny\n"), "{text}");
        assert!(text.contains("no approval possible"), "{text}");
    }
}
