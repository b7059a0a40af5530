//! `countersign show REQ`: everything about one request, for the person deciding on it.

use std::fmt::Write as _;
use std::time::SystemTime;

use countersign_api::display::over_cap;
use countersign_api::pb;

use crate::connect::Connection;
use crate::exit::{Outcome, OK};
use crate::json;
use crate::output::out;
use crate::render::time::{clock, clock_and_relative, duration_from_pb, from_pb, span};
use crate::render::{clean, operation};

/// `show` arguments.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// Request id (r-…).
    #[arg(value_name = "REQ")]
    pub request: String,
    /// Print the request as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `show`.
pub async fn run(conn: &Connection, args: &ShowArgs) -> Outcome {
    let request = pb::GetRequestRequest {
        request_id: args.request.clone(),
    };
    let r = conn.approvals().get_request(request).await?.into_inner();
    if args.json {
        super::print_json(&json::request(&r))?;
    } else {
        out!("{}", details(&r, SystemTime::now()));
    }
    Ok(OK)
}

/// Distinct people who approved so far.
pub fn approvals(r: &pb::ApprovalRequest) -> usize {
    let mut people: Vec<&str> = r
        .decisions
        .iter()
        .filter(|d| !matches!(d.verdict, Some(pb::decision::Verdict::Deny(_)) | None))
        .map(|d| d.decided_by.as_str())
        .collect();
    people.sort_unstable();
    people.dedup();
    people.len()
}

/// `approve once`, `approve for 10m (2 uses)`, `deny: reason`.
pub fn verdict(d: &pb::Decision) -> String {
    match &d.verdict {
        Some(pb::decision::Verdict::ApproveOnce(_)) => "approve once".into(),
        Some(pb::decision::Verdict::ApproveForDuration(f)) => {
            let time = duration_from_pb(f.duration.as_ref()).map_or_else(|| "?".into(), span);
            format!("approve for {time} ({})", uses(f.uses))
        }
        Some(pb::decision::Verdict::Deny(deny)) => format!("deny: {}", clean(&deny.reason)),
        None => "?".into(),
    }
}

/// `1 use`, `3 uses`, `unlimited uses`.
pub fn uses(n: u32) -> String {
    match n {
        0 => "unlimited uses".into(),
        1 => "1 use".into(),
        n => format!("{n} uses"),
    }
}

fn line(out: &mut String, key: &str, value: impl AsRef<str>) {
    let _ = writeln!(out, "{key:<13} {}", value.as_ref());
}

/// The text of `show`.
pub fn details(r: &pb::ApprovalRequest, now: SystemTime) -> String {
    let mut out = String::new();
    let when = |ts: Option<&prost_types::Timestamp>| {
        from_pb(ts).map_or_else(|| "-".into(), |t| clock_and_relative(t, now))
    };
    let state = json::state_name(r.state());
    line(
        &mut out,
        "request",
        format!("{} ({state})", clean(&r.request_id)),
    );
    line(&mut out, "host", clean(&r.host));
    if let Some(op) = &r.operation {
        operation_lines(&mut out, op);
    }
    let rule = match r.rule_description.as_str() {
        "" => clean(&r.rule).into_owned(),
        d => format!("{}: {}", clean(&r.rule), clean(d)),
    };
    line(&mut out, "rule", rule);
    if !r.reason.is_empty() {
        line(&mut out, "reason", clean(&r.reason));
    }
    line(&mut out, "first seen", when(r.first_seen.as_ref()));
    line(&mut out, "last seen", when(r.last_seen.as_ref()));
    line(&mut out, "attempts", r.attempts.to_string());
    if r.over_cap > 0 {
        line(&mut out, "over the cap", over_cap(r.over_cap));
    }
    line(&mut out, "expires", when(r.expires_at.as_ref()));
    let groups: Vec<_> = r.approver_groups.iter().map(|g| clean(g)).collect();
    line(
        &mut out,
        "approvers",
        format!("groups {}", groups.join(", ")),
    );
    line(
        &mut out,
        "approvals",
        format!("{} of {}", approvals(r), r.approvals_required.max(1)),
    );
    let ttl = duration_from_pb(r.max_grant_ttl.as_ref()).map_or_else(|| "?".into(), span);
    line(
        &mut out,
        "grant limits",
        format!("at most {ttl}, {}", uses(r.max_grant_uses)),
    );
    if !r.grant_id.is_empty() {
        line(&mut out, "grant", clean(&r.grant_id));
    }
    if r.decisions.is_empty() {
        line(&mut out, "decisions", "none yet");
    }
    for (i, d) in r.decisions.iter().enumerate() {
        let at = from_pb(d.time.as_ref()).map_or_else(|| "?".into(), |t| clock(t, now));
        let mut text = format!("{at} {} {}", clean(&d.decided_by), verdict(d));
        if !d.grant_id.is_empty() {
            let _ = write!(text, " → grant {}", clean(&d.grant_id));
        }
        line(&mut out, if i == 0 { "decisions" } else { "" }, text);
    }
    out
}

fn operation_lines(out: &mut String, op: &pb::Operation) {
    line(out, "agent", super::pending::agent_session(Some(op)));
    if !op.cgroup.is_empty() {
        line(
            out,
            "cgroup",
            format!("{} (id {})", clean(&op.cgroup), op.cgroup_id),
        );
    }
    let user = match op.launching_user.as_str() {
        "" => "?".into(),
        u => clean(u).into_owned(),
    };
    line(out, "launched by", user);
    line(
        out,
        "operation",
        format!("{} {}", operation::kind(op), operation::text(op)),
    );
    let mut binary = clean(&op.binary).into_owned();
    if !op.device.is_empty() || op.inode != 0 {
        let _ = write!(binary, " (dev {}, ino {})", clean(&op.device), op.inode);
    }
    line(out, "binary", binary);
    line(
        out,
        "process",
        format!(
            "pid {} (tgid {}), comm {}, uid {}, gid {}",
            op.pid,
            op.tgid,
            clean(&op.comm),
            op.uid,
            op.gid
        ),
    );
    for (i, p) in op.parents.iter().enumerate() {
        let text = format!("{} {} {}", p.pid, clean(&p.comm), clean(&p.exe));
        line(out, if i == 0 { "parents" } else { "" }, text);
    }
    line(out, "fingerprint", clean(&op.fingerprint));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn details_show_everything() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_442_592);
        let r = pb::ApprovalRequest {
            request_id: "r-3f9a1c02de".into(),
            host: "build-01".into(),
            state: pb::RequestState::Pending as i32,
            operation: Some(pb::Operation {
                agent_group: "coding-agents".into(),
                session: "s-4242".into(),
                cgroup: "/countersign/coding-agents/s-4242".into(),
                launching_user: "alice".into(),
                binary: "/usr/bin/kubectl".into(),
                device: "254:0".into(),
                inode: 247_730,
                argv: vec!["kubectl".into(), "delete".into()],
                parents: vec![
                    pb::ParentProcess {
                        pid: 4242,
                        comm: "bash".into(),
                        exe: "/usr/bin/bash".into(),
                    },
                    pb::ParentProcess {
                        pid: 1,
                        comm: "init".into(),
                        exe: "/sbin/init".into(),
                    },
                ],
                fingerprint: "9a3f00112233aabb".into(),
                ..Default::default()
            }),
            rule: "kubectl-mutations".into(),
            rule_description: "changes to the cluster".into(),
            approvals_required: 2,
            approver_groups: vec!["sre".into(), "security".into()],
            decisions: vec![pb::Decision {
                decided_by: "bob".into(),
                verdict: Some(pb::decision::Verdict::ApproveOnce(pb::ApproveOnce {})),
                ..Default::default()
            }],
            max_grant_ttl: Some(prost_types::Duration {
                seconds: 600,
                nanos: 0,
            }),
            max_grant_uses: 1,
            ..Default::default()
        };
        let text = details(&r, now);
        for part in [
            "request       r-3f9a1c02de (pending)",
            "agent         coding-agents/s-4242",
            "launched by   alice",
            "operation     exec kubectl delete",
            "binary        /usr/bin/kubectl (dev 254:0, ino 247730)",
            "parents       4242 bash /usr/bin/bash\n              1 init /sbin/init",
            "rule          kubectl-mutations: changes to the cluster",
            "approvers     groups sre, security",
            "approvals     1 of 2",
            "grant limits  at most 10m, 1 use",
            "decisions     ? bob approve once",
            "fingerprint   9a3f00112233aabb",
        ] {
            assert!(text.contains(part), "{part:?} in\n{text}");
        }
    }

    #[test]
    fn verdicts() {
        let d = |v| pb::Decision {
            verdict: Some(v),
            ..Default::default()
        };
        let for_ = pb::ApproveForDuration {
            duration: Some(prost_types::Duration {
                seconds: 600,
                nanos: 0,
            }),
            uses: 0,
        };
        assert_eq!(
            verdict(&d(pb::decision::Verdict::ApproveForDuration(for_))),
            "approve for 10m (unlimited uses)"
        );
        let deny = pb::Deny {
            reason: "not now".into(),
        };
        assert_eq!(
            verdict(&d(pb::decision::Verdict::Deny(deny))),
            "deny: not now"
        );
    }
}
