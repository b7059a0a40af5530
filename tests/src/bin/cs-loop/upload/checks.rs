//! After an upload: nothing lost, nothing doubled. Every daemon's last ack is its last
//! sequence (and Register says so again), the audit trail holds exactly one `attempt` per
//! record sent, and the refusals by the approve rule became one pending request per
//! fingerprint whose attempts add up to the refusals.

use std::collections::HashMap;

use countersign_api::pb::ListPendingRequest;
use tonic::transport::Channel;

use super::{fleet, synth::GROUP};
use crate::{
    audit,
    grpc::{self, Pki},
};

/// What a daemon sent, for the checks.
pub struct Sent {
    pub host: String,
    pub events: u64,
    pub approve: u64,
    pub fingerprints: u64,
}

/// Totals found in the store (all equal to what was sent, or the check failed).
pub struct Found {
    pub attempts: u64,
    pub requests: u64,
}

/// Runs the checks as the auditor and the approver; the error lists every problem.
pub async fn verify(
    url: &str,
    pki: &Pki,
    sent: &[Sent],
    run: &fleet::Run,
) -> Result<Found, String> {
    let mut problems = Vec::new();
    for d in &run.daemons {
        let want = sent
            .iter()
            .find(|s| s.host == d.host)
            .map_or(0, |s| s.events);
        if d.acked != want {
            problems.push(format!(
                "{}: last ack {} for {want} records",
                d.host, d.acked
            ));
        }
        for (last, acked) in d.short.iter().take(3) {
            problems.push(format!(
                "{}: batch up to {last} acked only to {acked}",
                d.host
            ));
        }
    }
    for s in sent {
        let ch = grpc::connect(url, &pki.host(&s.host)).await?;
        let again = grpc::agent(&ch)
            .register(fleet::hello())
            .await
            .map_err(|st| grpc::failed(&format!("Register as {} again", s.host), &st))?
            .into_inner();
        if again.last_acked_sequence != s.events {
            problems.push(format!(
                "{}: Register resumes after {}, {} were sent",
                s.host, again.last_acked_sequence, s.events
            ));
        }
    }
    let auditor = grpc::connect(url, &pki.person("carol")).await?;
    let mut attempts: HashMap<String, u64> = HashMap::new();
    let mut requests: HashMap<String, u64> = HashMap::new();
    for r in audit::export(&auditor).await? {
        let counter = match r.kind.as_str() {
            "attempt" => &mut attempts,
            "request" => &mut requests,
            _ => continue,
        };
        *counter.entry(r.field("host").to_owned()).or_default() += 1;
    }
    let approver = grpc::connect(url, &pki.person("alice")).await?;
    for s in sent {
        let stored = attempts.get(&s.host).copied().unwrap_or(0);
        if stored != s.events {
            problems.push(format!(
                "{}: {stored} `attempt` records in the audit trail for {} sent",
                s.host, s.events
            ));
        }
        let opened = requests.get(&s.host).copied().unwrap_or(0);
        if opened != s.fingerprints {
            problems.push(format!(
                "{}: {opened} `request` records for {} refused operations",
                s.host, s.fingerprints
            ));
        }
        let (pending, tries) = pending(&approver, &s.host).await?;
        if pending != s.fingerprints || tries != s.approve {
            problems.push(format!(
                "{}: {pending} pending requests with {tries} attempts in all, for {} \
                 operations refused {} times",
                s.host, s.fingerprints, s.approve
            ));
        }
    }
    if !problems.is_empty() {
        problems.truncate(12);
        return Err(format!("checks failed:\n  {}", problems.join("\n  ")));
    }
    Ok(Found {
        attempts: attempts.values().sum(),
        requests: requests.values().sum(),
    })
}

/// Pending requests of `host` and the sum of their attempts (every page).
async fn pending(approver: &Channel, host: &str) -> Result<(u64, u64), String> {
    let mut client = grpc::approval(approver);
    let (mut count, mut tries) = (0, 0);
    let mut page_token = String::new();
    loop {
        let page = client
            .list_pending(ListPendingRequest {
                host: host.to_owned(),
                agent_group: GROUP.to_owned(),
                page_size: 500,
                page_token,
            })
            .await
            .map_err(|s| grpc::failed("ApprovalService.ListPending", &s))?
            .into_inner();
        count += page.requests.len() as u64;
        tries += page
            .requests
            .iter()
            .map(|r| u64::from(r.attempts))
            .sum::<u64>();
        if page.next_page_token.is_empty() {
            return Ok((count, tries));
        }
        page_token = page.next_page_token;
    }
}
