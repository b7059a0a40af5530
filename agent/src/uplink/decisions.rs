//! The decision stream: grants to install, revocations, and the requests waiting agents care
//! about. Applied in order, each one before its cursor is saved; a grant is remembered as
//! installed before it is written, so a replay after a crash never hands it out twice.

use std::{sync::Arc, time::SystemTime};

use countersign_api::pb::{self, agent_service_client::AgentServiceClient, decision_event::Event};
use tonic::transport::Channel;

use super::{
    convert,
    enforcer::{Enforcer, GrantOrder},
    error::LinkError,
    Link,
};
use crate::{
    approvals::{GrantInfo, State},
    session::SessionKey,
};

/// Follows the stream from the saved cursor until the link fails.
pub async fn run(
    link: &Arc<Link>,
    enforcer: &Arc<dyn Enforcer>,
    mut client: AgentServiceClient<Channel>,
) -> Result<(), LinkError> {
    let cursor = link.progress().await.cursor;
    let mut stream = client
        .decisions(pb::DecisionsRequest { cursor })
        .await
        .map_err(|s| LinkError::rpc("Decisions", s))?
        .into_inner();
    loop {
        let event = stream
            .message()
            .await
            .map_err(|s| LinkError::rpc("Decisions", s))?
            .ok_or(LinkError::StreamEnded)?;
        apply(link, enforcer, event.event).await;
        link.set_cursor(event.cursor).await;
    }
}

/// Applies one event. Problems are logged: a grant that cannot be installed (its session
/// ended, its group left the policy) must not stop the stream.
async fn apply(link: &Arc<Link>, enforcer: &Arc<dyn Enforcer>, event: Option<Event>) {
    match event {
        Some(Event::Grant(g)) => grant(link, enforcer, g).await,
        Some(Event::Revocation(r)) => revoke(link, enforcer, r).await,
        Some(Event::Opened(o)) => {
            let key = SessionKey::new(&o.agent_group, &o.session);
            let expires = o.expires_at.as_ref().and_then(convert::system_time);
            let rule = (!o.rule.is_empty()).then_some(o.rule);
            link.table
                .opened(&key, &o.fingerprint, &o.request_id, rule, expires);
        }
        Some(Event::Closed(c)) => {
            let key = SessionKey::new(&c.agent_group, &c.session);
            let state = if c.state == pb::RequestState::Expired as i32 {
                State::Expired
            } else {
                State::Denied
            };
            tracing::info!(request_id = %c.request_id, session = %key, state = state.as_str(), decided_by = %c.decided_by, "request closed");
            let decided_by = (!c.decided_by.is_empty()).then_some(c.decided_by);
            let reason = (!c.reason.is_empty()).then_some(c.reason);
            link.table.closed(
                &key,
                &c.fingerprint,
                &c.request_id,
                state,
                decided_by,
                reason,
            );
        }
        None => tracing::debug!("decision event of an unknown kind ignored"),
    }
}

/// A grant event as an order for the kernel; Err says why it is skipped.
pub fn order(g: &pb::Grant, now_at_server: SystemTime) -> Result<GrantOrder, String> {
    let grant_id = parse_hex(&g.grant_id)
        .filter(|id| *id != 0)
        .ok_or_else(|| format!("grant id {:?} is not 16 hex digits", g.grant_id))?;
    if !agent_common::binding::is_id(&g.fingerprint) {
        return Err(format!(
            "fingerprint {:?} is not an operation id (32 hex digits)",
            g.fingerprint
        ));
    }
    let fingerprint = g.fingerprint.clone();
    let granted_at = g
        .granted_at
        .as_ref()
        .and_then(convert::system_time)
        .ok_or("no grant time")?;
    let ttl = g.ttl.as_ref().map(convert::duration).unwrap_or_default();
    let expires = granted_at + ttl;
    let left = expires
        .duration_since(now_at_server)
        .map_err(|_| "expired already".to_owned())?;
    if left.is_zero() {
        return Err("expired already".into());
    }
    Ok(GrantOrder {
        group: g.agent_group.clone(),
        session: g.session.clone(),
        fingerprint,
        uses: g.uses,
        ttl: left,
        grant_id,
    })
}

/// 16 hex digits (an optional `0x` tolerated) as a u64.
pub fn parse_hex(s: &str) -> Option<u64> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

async fn grant(link: &Arc<Link>, enforcer: &Arc<dyn Enforcer>, g: pb::Grant) {
    let key = SessionKey::new(&g.agent_group, &g.session);
    let order = match order(&g, link.server_now()) {
        Ok(o) => o,
        Err(why) => {
            tracing::info!(grant_id = %g.grant_id, request_id = %g.request_id, session = %key, why, "grant not installed");
            return;
        }
    };
    let expires_at = SystemTime::now() + order.ttl;
    if !link.claim_grant(&g.grant_id, expires_at).await {
        tracing::debug!(grant_id = %g.grant_id, "grant installed before (stream replayed)");
        return;
    }
    let e = enforcer.clone();
    let o = order.clone();
    let result = tokio::task::spawn_blocking(move || e.install_grant(&o)).await;
    match result {
        Ok(Ok(scope)) => {
            tracing::info!(grant_id = %g.grant_id, request_id = %g.request_id, session = %key, scope, fingerprint = %g.fingerprint, uses = g.uses, ttl_s = order.ttl.as_secs(), approvers = ?g.approvers, "grant installed");
            let info = GrantInfo {
                grant_id: g.grant_id.clone(),
                uses: g.uses,
                expires_at,
                approvers: g.approvers.clone(),
            };
            link.table
                .granted(&key, &g.fingerprint, &g.request_id, info);
        }
        Ok(Err(e)) => {
            tracing::warn!(grant_id = %g.grant_id, request_id = %g.request_id, session = %key, error = %format!("{e:#}"), "grant not installed");
        }
        Err(e) => tracing::error!(error = %e, "installing a grant"),
    }
}

async fn revoke(link: &Arc<Link>, enforcer: &Arc<dyn Enforcer>, r: pb::Revocation) {
    let Some(id) = parse_hex(&r.grant_id) else {
        tracing::warn!(grant_id = %r.grant_id, "revocation of a malformed grant id ignored");
        return;
    };
    let e = enforcer.clone();
    match tokio::task::spawn_blocking(move || e.revoke_grant(id)).await {
        Ok(Ok(slots)) => {
            tracing::info!(grant_id = %r.grant_id, revoked_by = %r.revoked_by, reason = %r.reason, slots, "grant revoked")
        }
        Ok(Err(e)) => {
            tracing::error!(grant_id = %r.grant_id, error = %format!("{e:#}"), "revoking a grant")
        }
        Err(e) => tracing::error!(error = %e, "revoking a grant"),
    }
    link.table.revoked(&r.grant_id);
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn grant(granted_at: SystemTime, ttl_s: i64) -> pb::Grant {
        pb::Grant {
            grant_id: "00000000000000ab".into(),
            request_id: "r-0123456789".into(),
            agent_group: "coding".into(),
            session: "s1".into(),
            fingerprint: "6bbc2a815923d29bfcd0cd6cc284833c".into(),
            uses: 1,
            ttl: Some(prost_types::Duration {
                seconds: ttl_s,
                nanos: 0,
            }),
            granted_at: Some(convert::timestamp(granted_at)),
            approvers: vec!["alice".into()],
            expires_at: None,
        }
    }

    #[test]
    fn grants_keep_what_is_left_of_their_lifetime() {
        let now = SystemTime::now();
        let o = order(&grant(now - Duration::from_secs(60), 600), now).expect("live");
        assert_eq!(o.ttl, Duration::from_secs(540));
        assert_eq!(
            (o.grant_id, o.fingerprint.as_str()),
            (0xab, "6bbc2a815923d29bfcd0cd6cc284833c")
        );
        assert_eq!(
            (o.group.as_str(), o.session.as_str(), o.uses),
            ("coding", "s1", 1)
        );
        assert!(order(&grant(now - Duration::from_secs(601), 600), now).is_err());
        assert!(order(&grant(now - Duration::from_secs(600), 600), now).is_err());
    }

    #[test]
    fn malformed_grants_are_skipped() {
        let now = SystemTime::now();
        let mut g = grant(now, 60);
        g.grant_id = "0000000000000000".into();
        assert!(order(&g, now).is_err(), "grant id 0 is reserved");
        g.grant_id = "xyz".into();
        assert!(order(&g, now).is_err());
        let mut g = grant(now, 60);
        g.fingerprint = "12345678901234567".into();
        assert!(order(&g, now).is_err());
        let mut g = grant(now, 60);
        g.granted_at = None;
        assert!(order(&g, now).is_err());
    }

    #[test]
    fn hex() {
        assert_eq!(parse_hex("00000000000000ff"), Some(255));
        assert_eq!(parse_hex("0xff"), Some(255));
        assert_eq!(parse_hex(""), None);
        assert_eq!(parse_hex("-1"), None);
    }
}
