//! `countersign approve` and `countersign deny`: one person's decision on a request.

use std::time::{Duration, SystemTime};

use countersign_api::pb;

use super::show::{approvals, uses};
use crate::connect::Connection;
use crate::exit::{Failure, Outcome, OK};
use crate::output::outln;
use crate::render::clean;
use crate::render::time::{clock_and_relative, duration_from_pb, from_pb, span};
use crate::when::parse_duration;

/// `approve` arguments: exactly one of `--once` and `--for`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("how").required(true).args(["once", "for_"])))]
pub struct ApproveArgs {
    /// Request id (r-…).
    #[arg(value_name = "REQ")]
    pub request: String,
    /// Let the operation through once.
    #[arg(long)]
    pub once: bool,
    /// Let it through for this long (10m, 1h), within the rule's limit.
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
    pub for_: Option<Duration>,
    /// With --for: at most N uses (0: unlimited) [default: the rule's limit].
    #[arg(long, value_name = "N", conflicts_with = "once")]
    pub uses: Option<u32>,
}

/// `deny` arguments.
#[derive(Debug, clap::Args)]
pub struct DenyArgs {
    /// Request id (r-…).
    #[arg(value_name = "REQ")]
    pub request: String,
    /// Why (shown to the launching user, kept in the audit trail).
    #[arg(long, value_parser = non_empty)]
    pub reason: String,
}

/// A required free text that is not blank.
pub fn non_empty(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    Ok(s.to_owned())
}

/// Runs `approve`.
pub async fn approve(conn: &Connection, args: &ApproveArgs) -> Outcome {
    let mut client = conn.approvals();
    let verdict = match args.for_ {
        None => pb::decide_request::Verdict::ApproveOnce(pb::ApproveOnce {}),
        Some(duration) => {
            let uses = match args.uses {
                Some(n) => n,
                // The rule's own limit: asking for more would be refused.
                None => get(conn, &args.request).await?.max_grant_uses,
            };
            let duration = prost_types::Duration::try_from(duration)
                .map_err(|e| Failure::usage(format!("--for: {e}")))?;
            pb::decide_request::Verdict::ApproveForDuration(pb::ApproveForDuration {
                duration: Some(duration),
                uses,
            })
        }
    };
    let decision = client
        .decide(pb::DecideRequest {
            request_id: args.request.clone(),
            verdict: Some(verdict),
        })
        .await?
        .into_inner();
    // The decision alone does not say how far N-of-M got, nor the grant's lifetime for
    // `--once`; the request does. Best effort: the decision is recorded either way.
    let request = get(conn, &args.request).await.ok();
    outln!(
        "{}",
        approved_text(
            &args.request,
            &decision,
            request.as_ref(),
            SystemTime::now()
        )
    );
    Ok(OK)
}

/// Runs `deny`.
pub async fn deny(conn: &Connection, args: &DenyArgs) -> Outcome {
    let verdict = pb::decide_request::Verdict::Deny(pb::Deny {
        reason: args.reason.clone(),
    });
    conn.approvals()
        .decide(pb::DecideRequest {
            request_id: args.request.clone(),
            verdict: Some(verdict),
        })
        .await?;
    outln!("denied {}: {}", clean(&args.request), clean(&args.reason));
    Ok(OK)
}

async fn get(conn: &Connection, id: &str) -> Result<pb::ApprovalRequest, Failure> {
    let request = pb::GetRequestRequest {
        request_id: id.to_owned(),
    };
    Ok(conn.approvals().get_request(request).await?.into_inner())
}

/// What `approve` prints: the grant, or how many approvals are still needed.
pub fn approved_text(
    id: &str,
    d: &pb::Decision,
    request: Option<&pb::ApprovalRequest>,
    now: SystemTime,
) -> String {
    let id = clean(id);
    let (how, ttl) = match &d.verdict {
        Some(pb::decision::Verdict::ApproveForDuration(f)) => {
            let ttl = duration_from_pb(f.duration.as_ref());
            let time = ttl.map_or_else(|| "?".into(), span);
            (format!("for {time} ({})", uses(f.uses)), ttl)
        }
        _ => (
            "once".to_owned(),
            request.and_then(|r| duration_from_pb(r.max_grant_ttl.as_ref())),
        ),
    };
    if !d.grant_id.is_empty() {
        let mut text = format!("approved {id} {how}: grant {}", clean(&d.grant_id));
        let granted = from_pb(d.time.as_ref()).unwrap_or(now);
        if let Some(expiry) = ttl.and_then(|ttl| granted.checked_add(ttl)) {
            text.push_str(&format!(" expires {}", clock_and_relative(expiry, now)));
        }
        return text;
    }
    match request {
        Some(r) => {
            let required = r.approvals_required.max(1);
            let mut text = format!(
                "recorded {} of {required} approvals for {id} ({how})",
                approvals(r)
            );
            if !r.grant_id.is_empty() {
                // Approved already (e.g. this person's repeated decision).
                text.push_str(&format!(": grant {}", clean(&r.grant_id)));
            }
            text
        }
        None => format!("recorded your approval of {id} ({how})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn grant_issued() {
        let now = at(1_795_442_000);
        let d = pb::Decision {
            decided_by: "alice".into(),
            grant_id: "3f00aa11bb22cc33".into(),
            time: Some(now.into()),
            verdict: Some(pb::decision::Verdict::ApproveOnce(pb::ApproveOnce {})),
            ..Default::default()
        };
        let r = pb::ApprovalRequest {
            max_grant_ttl: Some(prost_types::Duration {
                seconds: 600,
                nanos: 0,
            }),
            ..Default::default()
        };
        let text = approved_text("r-3f9a1c02de", &d, Some(&r), now);
        assert!(
            text.starts_with("approved r-3f9a1c02de once: grant 3f00aa11bb22cc33 expires "),
            "{text}"
        );
        assert!(text.ends_with("(in 10m)"), "{text}");
    }

    #[test]
    fn n_of_m_progress() {
        let approve = |who: &str| pb::Decision {
            decided_by: who.into(),
            verdict: Some(pb::decision::Verdict::ApproveOnce(pb::ApproveOnce {})),
            ..Default::default()
        };
        let r = pb::ApprovalRequest {
            approvals_required: 2,
            decisions: vec![approve("alice"), approve("alice")],
            ..Default::default()
        };
        let text = approved_text("r-1", &approve("alice"), Some(&r), at(0));
        assert_eq!(text, "recorded 1 of 2 approvals for r-1 (once)");
        assert_eq!(
            approved_text("r-1", &approve("alice"), None, at(0)),
            "recorded your approval of r-1 (once)"
        );
    }

    #[test]
    fn reasons_must_not_be_blank() {
        assert_eq!(non_empty("  no  "), Ok("no".into()));
        assert!(non_empty(" \n").is_err());
    }
}
