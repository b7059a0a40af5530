//! How the daemon's knowledge looks on the agent socket.

use super::protocol::{Refusal, RequestView};
use crate::{approvals::Entry, uplink::convert::rfc3339};

/// A request table entry.
pub fn request(e: &Entry) -> RequestView {
    RequestView {
        request_id: e.request_id.clone(),
        fingerprint: e.fingerprint.clone(),
        operation: e.operation.clone().unwrap_or_default(),
        state: e.state.as_str().to_owned(),
        rule: e.rule.clone(),
        expires_at: e
            .grant
            .as_ref()
            .map(|g| g.expires_at)
            .or(e.expires_at)
            .map(rfc3339),
        reason: e.reason.clone().or_else(|| e.error.clone()),
    }
}

/// A refusal that will become a request once the control plane hears of it.
pub fn unseen_request(r: &Refusal) -> RequestView {
    RequestView {
        request_id: None,
        fingerprint: r.fingerprint.clone(),
        operation: r.operation.clone(),
        state: "pending".into(),
        rule: r.rule.clone(),
        expires_at: None,
        reason: None,
    }
}

/// An ask that waits for the link to the control plane.
pub fn queued(fingerprint: &str, operation: &str, rule: Option<String>) -> RequestView {
    RequestView {
        request_id: None,
        fingerprint: fingerprint.to_owned(),
        operation: operation.to_owned(),
        state: "pending".into(),
        rule,
        expires_at: None,
        reason: None,
    }
}

/// A refusal, with the request raised for it when known.
pub fn refusal(r: Refusal, request: Option<RequestView>) -> Refusal {
    Refusal { request, ..r }
}
