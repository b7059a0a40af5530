//! Deciding a request: separation of duties, N-of-M approvals and grant limits, as pure
//! functions the store runs inside its transaction.
//!
//! [`judge`] sees the locked request and its decisions and says what to write (a
//! [`Judgement`]) or why not (a [`Refusal`]). [`flow::decide`] is the whole decision —
//! authorize, judge inside the store's transaction, store, announce — for the gRPC service and
//! the chat bridges alike. Checks, in order:
//! 1. the caller is a person with role `approver` in one of the rule's approver groups
//!    (`permission_denied`);
//! 2. the same person already decided: the same verdict again is an idempotent repeat
//!    (returns the existing decision), another verdict is `failed_precondition`;
//! 3. the request is still pending and not past its expiry (`failed_precondition` naming the
//!    state, who decided and when);
//! 4. an approval by the person who launched the agent session needs the rule's
//!    `allow_launcher` (`permission_denied`); denying is always allowed (it only refuses);
//! 5. the grant the approval asks for is within the rule's limits and the kernel's
//!    (`invalid_argument` naming the limit);
//! 6. a deny closes the request; an approval closes it with a grant when it is the `min`-th
//!    distinct approval. The grant is the most restrictive of all approvals (shortest ttl,
//!    fewest uses), so no approver ever grants more than they agreed to.

pub mod flow;
mod limits;
mod refusal;

use std::time::SystemTime;

pub use limits::{grant_of, MAX_KERNEL_USES};
pub use refusal::Refusal;

use crate::people::{Person, Role};
use crate::store::{Close, DecisionRow, Judgement, RequestRow, RequestState, Verdict};

/// `YYYY-MM-DDTHH:MM:SSZ`, for messages.
pub fn when(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Whether `person` may decide on `request` at all: approver role, in one of the rule's
/// groups, and (unless the rule allows it) not the launcher of the agent session. This is
/// what `ListPending` shows.
pub fn may_decide(person: &Person, request: &RequestRow) -> bool {
    person.has(Role::Approver)
        && person.in_any(&request.spec.approver_groups)
        && (request.spec.allow_launcher || !is_launcher(person, request))
}

fn is_launcher(person: &Person, request: &RequestRow) -> bool {
    !request.launching_user.is_empty() && request.launching_user == person.name
}

/// What `person` deciding `verdict` on `request` (with its earlier `decisions`, oldest first)
/// at `now` writes, or the status that refuses it.
pub fn judge(
    person: &Person,
    channel: &str,
    verdict: &Verdict,
    request: &RequestRow,
    decisions: &[DecisionRow],
    now: SystemTime,
) -> Result<Judgement, Refusal> {
    authorize(person, request)?;
    if let Some(mine) = decisions.iter().find(|d| d.decided_by == person.name) {
        if same_verdict(&mine.verdict, verdict) {
            return Ok(Judgement::Repeat(mine.clone()));
        }
        return Err(Refusal::ChangedMind {
            request: request.id.clone(),
            decided: describe(&mine.verdict),
            at: when(mine.time),
        });
    }
    still_open(request, decisions, now)?;
    if verdict.is_approval() && !request.spec.allow_launcher {
        if is_launcher(person, request) {
            return Err(Refusal::Launcher {
                group: request.agent_group.clone(),
                session: request.session.clone(),
                rule: request.spec.rule.clone(),
            });
        }
        if request.launching_user.is_empty() {
            return Err(Refusal::UnknownLauncher {
                what: if request.session.is_empty() {
                    format!(
                        "work of agent group {} outside every session",
                        request.agent_group
                    )
                } else {
                    format!("agent session {}/{}", request.agent_group, request.session)
                },
                rule: request.spec.rule.clone(),
            });
        }
    }
    let close = match verdict {
        Verdict::Deny { .. } => Some(Close::Deny),
        approval => {
            let mine = grant_of(approval, &request.spec)?;
            let earlier: Vec<&DecisionRow> = decisions
                .iter()
                .filter(|d| d.verdict.is_approval())
                .collect();
            let mut approvers: Vec<String> = Vec::new();
            for d in &earlier {
                if !approvers.contains(&d.decided_by) {
                    approvers.push(d.decided_by.clone());
                }
            }
            approvers.push(person.name.clone());
            let required = request.spec.approvals_required.max(1) as usize;
            if approvers.len() < required {
                None
            } else {
                let (mut uses, mut ttl) = mine;
                for d in &earlier {
                    // Earlier approvals were checked when given; a stored one that no longer
                    // fits the frozen spec is left out of the combination rather than failing.
                    if let Ok((u, t)) = grant_of(&d.verdict, &request.spec) {
                        uses = fewer_uses(uses, u);
                        ttl = ttl.min(t);
                    }
                }
                Some(Close::Approve {
                    uses,
                    ttl,
                    approvers,
                })
            }
        }
    };
    Ok(Judgement::Record {
        decided_by: person.name.clone(),
        channel: channel.to_owned(),
        verdict: verdict.clone(),
        close,
    })
}

/// Whether `person` is an approver at all (before any request is read).
pub fn approver(person: &Person) -> Result<(), Refusal> {
    if person.has(Role::Approver) {
        Ok(())
    } else {
        Err(Refusal::NotApprover {
            person: person.name.clone(),
        })
    }
}

/// Step 1: role and approver group.
fn authorize(person: &Person, request: &RequestRow) -> Result<(), Refusal> {
    approver(person)?;
    if !person.in_any(&request.spec.approver_groups) {
        return Err(Refusal::NotInApproverGroup {
            person: person.name.clone(),
            rule: request.spec.rule.clone(),
            groups: request.spec.approver_groups.join(", "),
        });
    }
    Ok(())
}

/// Step 3: pending and not expired.
fn still_open(
    request: &RequestRow,
    decisions: &[DecisionRow],
    now: SystemTime,
) -> Result<(), Refusal> {
    let by = |pred: fn(&Verdict) -> bool| {
        let who: Vec<String> = decisions
            .iter()
            .filter(|d| pred(&d.verdict))
            .map(|d| format!("{} at {}", d.decided_by, when(d.time)))
            .collect();
        if who.is_empty() {
            String::new()
        } else {
            format!(" by {}", who.join(", "))
        }
    };
    let expired = || Refusal::Expired {
        request: request.id.clone(),
        at: when(request.expires_at),
    };
    match request.state {
        RequestState::Pending if now >= request.expires_at => Err(expired()),
        RequestState::Pending => Ok(()),
        RequestState::Expired => Err(expired()),
        RequestState::Denied => Err(Refusal::Closed {
            request: request.id.clone(),
            state: "denied",
            by: by(|v| !v.is_approval()),
        }),
        RequestState::Approved => Err(Refusal::Closed {
            request: request.id.clone(),
            state: "approved",
            by: format!(
                "{}{}",
                by(Verdict::is_approval),
                request
                    .grant_id
                    .as_ref()
                    .map(|g| format!(" (grant {g})"))
                    .unwrap_or_default()
            ),
        }),
    }
}

/// A retried call: the same kind of verdict with the same grant parameters (a deny's
/// reason may differ: the request is denied either way).
fn same_verdict(a: &Verdict, b: &Verdict) -> bool {
    match (a, b) {
        (Verdict::Deny { .. }, Verdict::Deny { .. }) => true,
        _ => a == b,
    }
}

/// "approved once", "approved for 10m (3 uses)", "denied (reason)".
pub fn describe(v: &Verdict) -> String {
    match v {
        Verdict::ApproveOnce => "approved once".to_owned(),
        Verdict::ApproveFor { duration, uses } => format!(
            "approved for {}{}",
            policy::format_duration(*duration),
            match uses {
                0 => " (unlimited uses)".to_owned(),
                1 => " (1 use)".to_owned(),
                n => format!(" ({n} uses)"),
            }
        ),
        Verdict::Deny { reason } => format!("denied ({reason})"),
    }
}

/// The smaller of two use counts, 0 meaning unlimited.
fn fewer_uses(a: u32, b: u32) -> u32 {
    match (a, b) {
        (0, x) | (x, 0) => x,
        (a, b) => a.min(b),
    }
}

#[cfg(test)]
mod tests;
