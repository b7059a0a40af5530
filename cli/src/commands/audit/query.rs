//! `countersign audit query`: matching records as a table, or as JSON Lines.

use std::time::SystemTime;

use countersign_api::pb;
use countersign_audit::Record;

use super::FilterArgs;
use crate::commands::all_pages;
use crate::connect::Connection;
use crate::exit::{Outcome, OK};
use crate::output::{out, outln};
use crate::render::time::{clock, from_pb};
use crate::render::{clean, Table};
use countersign_api::display::shell_join;

/// `audit query` arguments.
#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// At most N records.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub limit: usize,
    /// Print each record as its canonical JSON line.
    #[arg(long)]
    pub json: bool,
}

/// Runs `audit query`.
pub async fn run(conn: &Connection, args: &QueryArgs) -> Outcome {
    let client = conn.audit();
    let filter = args.filter.to_pb();
    let records = all_pages(args.limit, |page_token| {
        let mut client = client.clone();
        let request = pb::AuditQueryRequest {
            filter: Some(filter.clone()),
            page_size: u32::try_from(args.limit.min(500)).unwrap_or(500),
            page_token,
        };
        async move {
            let page = client.query(request).await?.into_inner();
            Ok((page.records, page.next_page_token))
        }
    })
    .await?;
    if args.json {
        for r in &records {
            // Already canonical JSON (one line): the auditor gets exactly what was hashed.
            outln!("{}", r.record_json.trim_end());
        }
    } else if records.is_empty() {
        outln!("no matching records");
    } else {
        out!("{}", table(&records, SystemTime::now()).render());
    }
    Ok(OK)
}

fn opt(s: Option<&String>) -> String {
    s.map_or_else(|| "-".into(), |s| clean(s).into_owned())
}

/// What a record is about, in a few words.
fn detail(r: &Record) -> String {
    let s = &r.subject;
    let mut parts = Vec::new();
    if let Some(argv) = &s.argv {
        parts.push(shell_join(argv));
    } else if let Some(d) = &s.destination {
        parts.push(format!(
            "{}:{}/{}",
            clean(&d.address),
            d.port,
            clean(&d.protocol)
        ));
    }
    if let Some(id) = &s.request_id {
        parts.push(format!("request {}", clean(id)));
    }
    if let Some(id) = &s.grant_id {
        parts.push(format!("grant {}", clean(id)));
    }
    if let Some(reason) = &s.reason {
        parts.push(format!("reason: {}", clean(reason)));
    }
    if let Some(cp) = &r.checkpoint {
        parts.push(format!("signs through seq {}", cp.head_seq));
    }
    parts.join(", ")
}

/// The table of `audit query`; records that do not parse still get a row (seq, kind).
pub fn table(records: &[pb::AuditRecord], now: SystemTime) -> Table {
    let mut t = Table::new(&[
        "SEQ", "TIME", "KIND", "ACTOR", "HOST", "AGENT", "RULE", "DECISION", "DETAIL",
    ]);
    for pbr in records {
        let time = from_pb(pbr.time.as_ref()).map_or_else(|| "-".into(), |t| clock(t, now));
        let Ok(r) = serde_json::from_str::<Record>(&pbr.record_json) else {
            t.row(vec![
                pbr.seq.to_string(),
                time,
                clean(&pbr.kind).into_owned(),
                "?".into(),
                "".into(),
                "".into(),
                "".into(),
                "".into(),
                "(record not readable)".into(),
            ]);
            continue;
        };
        let s = &r.subject;
        let agent = match (&s.agent, &s.session) {
            (Some(a), Some(sess)) => format!("{}/{}", clean(a), clean(sess)),
            (a, _) => opt(a.as_ref()),
        };
        t.row(vec![
            r.seq.to_string(),
            time,
            r.kind.as_str().into(),
            format!("{} {}", r.actor.kind.as_str(), clean(&r.actor.id)),
            opt(s.host.as_ref()),
            agent,
            opt(s.rule.as_ref()),
            opt(s.decision.as_ref()),
            detail(&r),
        ]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_table() {
        let json = r#"{"actor":{"channel":"kernel","id":"coding-agents/s-1","kind":"agent"},"hash":"1111111111111111111111111111111111111111111111111111111111111111","kind":"attempt","prev":"0000000000000000000000000000000000000000000000000000000000000000","seq":0,"subject":{"agent":"coding-agents","argv":["rm","-rf","/tmp/a b"],"decision":"refused","host":"build-01","rule":"recursive-delete","session":"s-1"},"time":"2026-11-23T14:00:08.750Z"}"#;
        let good = pb::AuditRecord {
            seq: 0,
            kind: "attempt".into(),
            record_json: json.into(),
            ..Default::default()
        };
        let bad = pb::AuditRecord {
            seq: 1,
            kind: "grant".into(),
            record_json: "{".into(),
            ..Default::default()
        };
        let text = table(&[good, bad], SystemTime::now()).render();
        let lines: Vec<&str> = text.lines().collect();
        for part in [
            "attempt",
            "agent coding-agents/s-1",
            "build-01",
            "coding-agents/s-1",
            "recursive-delete",
            "refused",
            "rm -rf '/tmp/a b'",
        ] {
            assert!(lines[1].contains(part), "{part:?} in {}", lines[1]);
        }
        assert!(lines[2].contains("(record not readable)"), "{}", lines[2]);
    }
}
