//! `countersign pending`: the requests waiting for the caller's decision, as a table a person
//! can scan (or JSON).

use std::time::SystemTime;

use countersign_api::pb;

use crate::connect::Connection;
use crate::exit::{Outcome, OK};
use crate::json;
use crate::output::{out, outln};
use crate::render::time::{from_pb, relative};
use crate::render::{clean, operation, Table};

/// `pending` flags.
#[derive(Debug, clap::Args)]
pub struct PendingArgs {
    /// Only requests of this host.
    #[arg(long)]
    pub host: Option<String>,
    /// Only requests of this agent group.
    #[arg(long, value_name = "GROUP")]
    pub agent: Option<String>,
    /// Print the requests as a JSON array.
    #[arg(long)]
    pub json: bool,
}

/// Most requests listed (the server pages; a human does not scan more).
const LIMIT: usize = 1000;

/// Runs `pending`.
pub async fn run(conn: &Connection, args: &PendingArgs) -> Outcome {
    let client = conn.approvals();
    let requests = super::all_pages(LIMIT, |page_token| {
        let mut client = client.clone();
        let request = pb::ListPendingRequest {
            host: args.host.clone().unwrap_or_default(),
            agent_group: args.agent.clone().unwrap_or_default(),
            page_size: 200,
            page_token,
        };
        async move {
            let page = client.list_pending(request).await?.into_inner();
            Ok((page.requests, page.next_page_token))
        }
    })
    .await?;
    if args.json {
        let list = requests.iter().map(json::request).collect();
        super::print_json(&serde_json::Value::Array(list))?;
    } else if requests.is_empty() {
        outln!("no pending requests");
    } else {
        out!("{}", table(&requests, SystemTime::now()).render());
    }
    Ok(OK)
}

/// `group/session`, or the group alone.
pub fn agent_session(op: Option<&pb::Operation>) -> String {
    match op {
        Some(op) if op.session.is_empty() => clean(&op.agent_group).into_owned(),
        Some(op) => format!("{}/{}", clean(&op.agent_group), clean(&op.session)),
        None => "-".into(),
    }
}

fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        clean(s).into_owned()
    }
}

/// The table of `pending`.
pub fn table(requests: &[pb::ApprovalRequest], now: SystemTime) -> Table {
    let mut t = Table::new(&[
        "ID",
        "HOST",
        "AGENT/SESSION",
        "LAUNCHED BY",
        "OPERATION",
        "RULE",
        "ATTEMPTS",
        "AGE",
        "EXPIRES",
    ]);
    for r in requests {
        let op = r.operation.as_ref();
        let when = |ts: Option<&prost_types::Timestamp>| {
            from_pb(ts).map_or_else(|| "-".into(), |t| relative(t, now))
        };
        t.row(vec![
            clean(&r.request_id).into_owned(),
            or_dash(&r.host),
            agent_session(op),
            or_dash(op.map_or("", |o| o.launching_user.as_str())),
            op.map_or_else(|| "-".into(), operation::text),
            or_dash(&r.rule),
            match r.over_cap {
                0 => r.attempts.to_string(),
                n => format!("{} (+{n} over cap)", r.attempts),
            },
            when(r.first_seen.as_ref()),
            when(r.expires_at.as_ref()),
        ]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ts(t: SystemTime) -> Option<prost_types::Timestamp> {
        Some(t.into())
    }

    #[test]
    fn pending_table() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_442_592);
        let r = pb::ApprovalRequest {
            request_id: "r-3f9a1c02de".into(),
            host: "build-01".into(),
            operation: Some(pb::Operation {
                agent_group: "coding-agents".into(),
                session: "s-4242".into(),
                launching_user: "alice".into(),
                binary: "/usr/bin/kubectl".into(),
                argv: vec![
                    "kubectl".into(),
                    "delete".into(),
                    "deploy".into(),
                    "web app".into(),
                ],
                ..Default::default()
            }),
            rule: "kubectl-mutations".into(),
            attempts: 2,
            first_seen: ts(now - Duration::from_secs(180)),
            expires_at: ts(now + Duration::from_secs(57 * 60)),
            ..Default::default()
        };
        let text = table(&[r], now).render();
        let mut lines = text.lines();
        let header = lines.next().expect("header");
        assert!(header.starts_with("ID  "), "{header}");
        assert!(header.ends_with("AGE     EXPIRES"), "{header}");
        let row = lines.next().expect("row");
        for part in [
            "r-3f9a1c02de",
            "build-01",
            "coding-agents/s-4242",
            "alice",
            "kubectl delete deploy 'web app'",
            "kubectl-mutations",
            "  2  ",
            "3m ago",
            "in 57m",
        ] {
            assert!(row.contains(part), "{part:?} in {row}");
        }
    }
}
