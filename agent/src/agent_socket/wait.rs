//! `wait`: until the session's operation is granted, denied or expired, or the time is up.
//! Wakes on every change of the request table (the decision stream), so a grant reaches the
//! waiting agent as soon as it is in the kernel.

use std::time::Duration;

use super::{
    handler::AgentApi,
    host::LiveGrant,
    protocol::{AgentResponse, WaitOutcome},
};
use crate::session::SessionKey;
use crate::{
    approvals::{Entry, State},
    uplink::convert::rfc3339,
};

/// Longest wait accepted (a client may wait again).
pub const MAX_WAIT: Duration = Duration::from_secs(24 * 3600);

impl AgentApi {
    pub(super) async fn wait(
        &self,
        key: &SessionKey,
        fingerprint: &str,
        timeout_ms: u64,
    ) -> Result<AgentResponse, String> {
        if !agent_common::binding::is_id(fingerprint) {
            return Err(format!(
                "fingerprint {fingerprint:?} is not an operation id (32 hex digits)"
            ));
        }
        let timeout = Duration::from_millis(timeout_ms).min(MAX_WAIT);
        let deadline = tokio::time::Instant::now() + timeout;
        // Subscribe before looking, so that a change between the look and the wait wakes us.
        let mut rx = self.table.subscribe();
        loop {
            rx.mark_unchanged();
            if let Some(outcome) = self.settled(key, fingerprint).await? {
                return Ok(AgentResponse::Waited { outcome });
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                // The table is gone (daemon stopping) or the time is up.
                Ok(Err(_)) | Err(_) => {
                    return Ok(AgentResponse::Waited {
                        outcome: WaitOutcome::TimedOut,
                    })
                }
            }
        }
    }

    /// How the operation stands, when that ends the wait.
    async fn settled(
        &self,
        key: &SessionKey,
        fp_text: &str,
    ) -> Result<Option<WaitOutcome>, String> {
        let entry = self.table.get(key, fp_text);
        let host = self.host.clone();
        let (k, fp) = (key.clone(), fp_text.to_owned());
        let live = tokio::task::spawn_blocking(move || host.live_grant(&k, &fp))
            .await
            .map_err(|e| format!("internal error: {e}"))?;
        if let Some(g) = live {
            return Ok(Some(granted(&g, entry.as_ref())));
        }
        let Some(e) = entry else { return Ok(None) };
        if let Some(message) = &e.error {
            return Err(message.clone());
        }
        // A decision about an earlier attempt says nothing about a retry refused since.
        let refused_since = self
            .refusals
            .last_seen(key, fp_text)
            .is_some_and(|seen| seen > e.changed);
        if refused_since {
            return Ok(None);
        }
        Ok(match e.state {
            State::Denied => Some(WaitOutcome::Denied {
                decided_by: e.decided_by.clone().unwrap_or_default(),
                reason: e.reason.clone().unwrap_or_default(),
            }),
            State::Expired => Some(WaitOutcome::Expired),
            State::Pending | State::Approved | State::Revoked => None,
        })
    }
}

/// The answer for a grant the kernel holds.
fn granted(g: &LiveGrant, entry: Option<&Entry>) -> WaitOutcome {
    let grant_id = format!("{:016x}", g.grant_id);
    let known = entry
        .and_then(|e| e.grant.as_ref())
        .filter(|info| info.grant_id == grant_id);
    WaitOutcome::Granted {
        uses: known.map_or(g.uses_left, |i| i.uses),
        approvers: known.map(|i| i.approvers.clone()).unwrap_or_default(),
        expires_at: rfc3339(g.expires_at),
        grant_id,
    }
}
