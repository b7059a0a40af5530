//! A request as the chats show it: the stored request, its decisions and grant, and the
//! sentences every chat renders (who, what, outcome), so that Slack and Teams say the same.
//!
//! Everything here is plain text; each chat escapes it for its own markup, because argv and
//! reasons are chosen by the agent.

use std::time::{Duration, SystemTime};

use countersign_api::display::{clean, over_cap, shell_join};

use crate::decide;
use crate::store::{DecisionRow, GrantRow, RequestRow, RequestState, Store, StoreError};

/// A request with what was decided on it.
#[derive(Clone, Debug)]
pub struct RequestView {
    /// The request.
    pub request: RequestRow,
    /// Its decisions, oldest first.
    pub decisions: Vec<DecisionRow>,
    /// The grant it produced.
    pub grant: Option<GrantRow>,
}

/// Durations offered by "Approve for…", cut to what the rule allows.
const DURATIONS: [Duration; 5] = [
    Duration::from_secs(5 * 60),
    Duration::from_secs(15 * 60),
    Duration::from_secs(60 * 60),
    Duration::from_secs(4 * 60 * 60),
    Duration::from_secs(8 * 60 * 60),
];

impl RequestView {
    /// Reads request `id` with its decisions and grant; `None` when there is no such request.
    pub async fn load(store: &Store, id: &str) -> Result<Option<RequestView>, StoreError> {
        let Some(request) = store.get_request(id).await? else {
            return Ok(None);
        };
        let decisions = store.decisions_of(id).await?;
        let grant = match &request.grant_id {
            Some(g) => store.get_grant(g).await?,
            None => None,
        };
        Ok(Some(RequestView {
            request,
            decisions,
            grant,
        }))
    }

    /// Whether buttons still make sense.
    pub fn is_open(&self, now: SystemTime) -> bool {
        self.request.state == RequestState::Pending && now < self.request.expires_at
    }

    /// `exec` or `connect`.
    pub fn kind(&self) -> &str {
        &self.request.kind
    }

    /// The operation in one line: the command line (binary first when argv[0] differs) or
    /// `address:port/protocol`.
    pub fn what(&self) -> String {
        let op = &self.request.operation;
        if let Some(d) = &op.destination {
            let address = if d.address.contains(':') {
                format!("[{}]", d.address)
            } else {
                d.address.clone()
            };
            return format!("connect to {address}:{}/{}", d.port, d.protocol);
        }
        let mut line = shell_join(&op.argv);
        if op.argv_truncated {
            line.push_str(" …(truncated)");
        }
        match op.argv.first() {
            Some(a0) if *a0 == op.binary || op.binary.is_empty() => line,
            _ => format!("{line}   (binary {})", clean(&op.binary)),
        }
    }

    /// Host, agent group/session and launching user, in one line.
    pub fn who(&self) -> String {
        let r = &self.request;
        let session = if r.session.is_empty() {
            r.agent_group.clone()
        } else {
            format!("{}/{}", r.agent_group, r.session)
        };
        let launcher = if r.launching_user.is_empty() {
            String::new()
        } else {
            format!(", launched by {}", r.launching_user)
        };
        clean(&format!("{session} on {}{launcher}", r.host)).into_owned()
    }

    /// The rule and its description.
    pub fn rule(&self) -> String {
        let spec = &self.request.spec;
        if spec.rule_description.is_empty() {
            spec.rule.clone()
        } else {
            format!("{} — {}", spec.rule, spec.rule_description)
        }
    }

    /// The agent's reason (asked ahead), if any, its hidden characters escaped.
    pub fn reason(&self) -> Option<String> {
        Some(clean(&self.request.reason).into_owned()).filter(|r| !r.is_empty())
    }

    /// "3 refused attempts" / "asked ahead" / "1 refused attempt", and the refusals of the
    /// session over the open-request cap counted here ("; 37 other operations of this session
    /// refused over the open-request cap").
    pub fn attempts(&self) -> String {
        let attempts = match self.request.attempts {
            0 => "asked ahead, not tried yet".to_owned(),
            1 => "1 refused attempt".to_owned(),
            n => format!("{n} refused attempts"),
        };
        match self.request.over_cap {
            0 => attempts,
            n => format!("{attempts}; {}", over_cap(n)),
        }
    }

    /// "1 of 2 approvals (alice)" while an N-of-M request waits for more.
    pub fn progress(&self) -> Option<String> {
        let required = self.request.spec.approvals_required.max(1);
        let approvers: Vec<&str> = self
            .decisions
            .iter()
            .filter(|d| d.verdict.is_approval())
            .map(|d| d.decided_by.as_str())
            .collect();
        (required > 1).then(|| {
            format!(
                "{} of {required} approvals{}",
                approvers.len(),
                if approvers.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", approvers.join(", "))
                }
            )
        })
    }

    /// What happened, once closed: who decided, through which channel, when, and the grant.
    pub fn outcome(&self) -> Option<String> {
        let r = &self.request;
        let by = |d: &DecisionRow| {
            format!(
                "{} via {} at {}",
                d.decided_by,
                d.channel,
                decide::when(d.time)
            )
        };
        match r.state {
            RequestState::Pending => None,
            RequestState::Expired => Some(format!(
                "Expired undecided at {}",
                decide::when(r.expires_at)
            )),
            RequestState::Denied => {
                let d = self.decisions.iter().find(|d| !d.verdict.is_approval())?;
                let reason = match &d.verdict {
                    crate::store::Verdict::Deny { reason } => reason.as_str(),
                    _ => "",
                };
                Some(format!("Denied by {} — “{reason}”", by(d)))
            }
            RequestState::Approved => {
                let approvals: Vec<String> = self
                    .decisions
                    .iter()
                    .filter(|d| d.verdict.is_approval())
                    .map(by)
                    .collect();
                let grant = self.grant.as_ref().map_or(String::new(), |g| {
                    let uses = match g.uses {
                        0 => "unlimited uses".to_owned(),
                        1 => "1 use".to_owned(),
                        n => format!("{n} uses"),
                    };
                    let revoked = if g.revoked { ", revoked" } else { "" };
                    format!(
                        " — grant {} ({uses}, expires {}{revoked})",
                        g.grant_id,
                        decide::when(g.expires_at())
                    )
                });
                Some(format!("Approved by {}{grant}", approvals.join(" and ")))
            }
        }
    }

    /// Durations "Approve for…" may offer: the usual ones within the rule's longest grant,
    /// and that longest grant itself.
    pub fn durations(&self) -> Vec<Duration> {
        let max = self.request.spec.max_grant_ttl;
        let mut out: Vec<Duration> = DURATIONS.iter().copied().filter(|d| *d < max).collect();
        if !max.is_zero() {
            out.push(max);
        }
        out
    }

    /// When the request expires, for the card.
    pub fn expires(&self) -> String {
        decide::when(self.request.expires_at)
    }
}

/// "15m", "1h", "8h": a duration as the buttons say it.
pub fn short_duration(d: Duration) -> String {
    policy::format_duration(d)
}

#[cfg(test)]
mod tests {
    use crate::chat::corpus;
    use crate::store::RequestState;

    /// Slack and Teams show the flood behind a request beside its attempts.
    #[test]
    fn refusals_over_the_cap_are_told_with_the_attempts() {
        let mut v = corpus::view(RequestState::Pending);
        assert_eq!(v.attempts(), "2 refused attempts");
        v.request.over_cap = 37;
        assert_eq!(
            v.attempts(),
            "2 refused attempts; 37 other operations of this session were refused over the \
             open-request cap, not requested"
        );
        v.request.over_cap = 1;
        assert!(v.attempts().ends_with("; 1 other operation of this session was refused over the open-request cap, not requested"), "{}", v.attempts());
    }
}
