//! After the loop: every refusal became exactly one request, every retry was `granted` with
//! the grant its approval issued — in the daemon's event log and in the audit trail the
//! auditor exports — and nothing is left pending.

use std::{
    collections::HashMap,
    thread,
    time::{Duration, Instant},
};

use countersign_api::pb::ListPendingRequest;
use serde_json::Value;
// `::tests`: the harness crate, not the unit-test module below.
use ::tests::{bench::guarded, control_plane::HOST, events::Event};
use tokio::runtime::Runtime;

use super::{
    world::{World, APPROVER, AUDITOR, GROUP, RULE},
    Iteration,
};
use crate::{audit, grpc};

/// How long the last events may take to reach the log and the server.
const SETTLE: Duration = Duration::from_secs(30);

/// Runs every check (and notes when the server received each refusal); the error lists
/// what is wrong.
pub fn run(world: &World, rt: &Runtime, its: &mut [Iteration]) -> Result<(), String> {
    let mut problems = Vec::new();
    for it in its.iter().filter(|it| it.attempts != 1) {
        problems.push(format!(
            "{}: the approver first saw {} attempts (one refusal was made)",
            it.label, it.attempts
        ));
    }
    problems.extend(event_log(world, its)?);
    problems.extend(audit_trail(world, rt, its)?);
    problems.extend(nothing_pending(world, rt)?);
    if problems.is_empty() {
        return Ok(());
    }
    let more = problems.len().saturating_sub(10);
    problems.truncate(10);
    if more > 0 {
        problems.push(format!("… and {more} more"));
    }
    Err(format!("checks failed:\n  {}", problems.join("\n  ")))
}

/// The daemon's log: per iteration one refusal by the rule and one `granted` retry.
fn event_log(world: &World, its: &[Iteration]) -> Result<Vec<String>, String> {
    let log = world.rig.agent.events();
    let deadline = Instant::now() + SETTLE;
    let events = loop {
        let events = guarded("reading the event log", || log.read())?;
        let granted = events.iter().filter(|e| e.outcome == "granted").count();
        if granted >= its.len() || Instant::now() > deadline {
            break events;
        }
        thread::sleep(Duration::from_millis(50));
    };
    let mut problems = Vec::new();
    for it in its {
        let of = |e: &&Event| e.argv().get(1) == Some(&it.label);
        let refused = events
            .iter()
            .filter(of)
            .filter(|e| {
                matches!(e.outcome.as_str(), "refused" | "killed")
                    && e.action == "approve"
                    && e.rule.as_deref() == Some(RULE)
            })
            .count();
        let granted: Vec<&Event> = events
            .iter()
            .filter(of)
            .filter(|e| e.outcome == "granted")
            .collect();
        if refused != 1 {
            problems.push(format!(
                "event log: {refused} refusals of `guarded {}`",
                it.label
            ));
        }
        match granted.as_slice() {
            [e] if grant_of(e) == it.grant_id => {}
            [e] => problems.push(format!(
                "event log: `guarded {}` went through grant {:?}, the approval issued {}",
                it.label,
                grant_of(e),
                it.grant_id
            )),
            other => problems.push(format!(
                "event log: {} granted runs of `guarded {}`",
                other.len(),
                it.label
            )),
        }
    }
    Ok(problems)
}

/// The event's grant id as text (the log may write it as a string or a number).
fn grant_of(e: &Event) -> String {
    match &e.grant_id {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.as_u64().map_or(n.to_string(), |v| format!("{v:016x}")),
        _ => String::new(),
    }
}

/// The audit trail: per iteration one refused `attempt`, one `request`, one `decision` (made
/// through the iteration's channel: `slack` for a click), one `grant`, one `grant_use` — and
/// no other request. The `request` record's time is when the
/// server received the refusal.
fn audit_trail(world: &World, rt: &Runtime, its: &mut [Iteration]) -> Result<Vec<String>, String> {
    let records = rt.block_on(async {
        let auditor = grpc::connect(&world.cp.url(), &world.pki().person(AUDITOR)).await?;
        let deadline = Instant::now() + SETTLE;
        loop {
            let records = audit::export(&auditor).await?;
            let uses = records.iter().filter(|r| r.kind == "grant_use").count();
            if uses >= its.len() || Instant::now() > deadline {
                return Ok::<_, String>(records);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })?;
    let mut counts: HashMap<(&str, &str), usize> = HashMap::new();
    for r in &records {
        let key = match r.kind.as_str() {
            "attempt" if matches!(r.field("decision"), "refused" | "killed") => {
                r.field("fingerprint")
            }
            "request" | "decision" => r.field("request_id"),
            "grant" | "grant_use" => r.field("grant_id"),
            _ => continue,
        };
        *counts.entry((r.kind.as_str(), key)).or_default() += 1;
    }
    let mut problems = Vec::new();
    for it in its.iter() {
        for (kind, key) in [
            ("attempt", it.fingerprint.as_str()),
            ("request", &it.request_id),
            ("decision", &it.request_id),
            ("grant", &it.grant_id),
            ("grant_use", &it.grant_id),
        ] {
            let n = counts.get(&(kind, key)).copied().unwrap_or(0);
            if n != 1 {
                problems.push(format!(
                    "audit trail: {n} `{kind}` records for `guarded {}` ({key})",
                    it.label
                ));
            }
        }
    }
    for it in its.iter() {
        let channel = records
            .iter()
            .find(|r| r.kind == "decision" && r.field("request_id") == it.request_id)
            .map(|r| r.actor["channel"].as_str().unwrap_or_default());
        if channel.is_some_and(|c| c != it.via.channel()) {
            problems.push(format!(
                "audit trail: the decision of `guarded {}` came through {channel:?}, not {}",
                it.label,
                it.via.channel()
            ));
        }
    }
    for it in its.iter_mut() {
        it.received_at = records
            .iter()
            .find(|r| r.kind == "request" && r.field("request_id") == it.request_id)
            .and_then(|r| r.time);
    }
    let requests = records.iter().filter(|r| r.kind == "request").count();
    if requests != its.len() {
        problems.push(format!(
            "audit trail: {requests} requests for {} refusals",
            its.len()
        ));
    }
    Ok(problems)
}

/// Every request was decided: the approver's queue is empty.
fn nothing_pending(world: &World, rt: &Runtime) -> Result<Vec<String>, String> {
    let pending = rt.block_on(async {
        let approver = grpc::connect(&world.cp.url(), &world.pki().person(APPROVER)).await?;
        grpc::approval(&approver)
            .list_pending(ListPendingRequest {
                host: HOST.to_owned(),
                agent_group: GROUP.to_owned(),
                page_size: 100,
                page_token: String::new(),
            })
            .await
            .map_err(|s| grpc::failed("ApprovalService.ListPending", &s))
    })?;
    Ok(pending
        .into_inner()
        .requests
        .iter()
        .map(|r| format!("request {} is still pending", r.request_id))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_ids_as_text() {
        let mut e: Event = serde_json::from_value(serde_json::json!({
            "kind": "exec", "action": "approve", "outcome": "granted", "mode": "fallback",
            "pid": 1, "tgid": 1, "grant_id": "00000000000000ff"
        }))
        .unwrap_or_else(|e| panic!("event: {e}"));
        assert_eq!(grant_of(&e), "00000000000000ff");
        e.grant_id = Some(serde_json::json!(255));
        assert_eq!(grant_of(&e), "00000000000000ff");
        e.grant_id = None;
        assert_eq!(grant_of(&e), "");
    }
}
