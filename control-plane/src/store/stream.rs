//! The per-host decision stream: what the store tells a daemon (requests opened and closed,
//! grants, revocations). The cursor is the row id, increasing per host.

use sqlx::Row as _;

use super::rows::{GrantRow, RequestRow};
use super::{codec, Store, StoreError};
use crate::rpc::pb;
use crate::rpc::pb::decision_event::Event;

fn wrap(event: Event) -> pb::DecisionEvent {
    pb::DecisionEvent {
        cursor: String::new(),
        event: Some(event),
    }
}

/// `opened`: a request was created or joined (agents waiting in the session learn its id), or
/// got an approval short of the N it needs (still pending).
pub(super) fn opened(r: &RequestRow) -> pb::DecisionEvent {
    wrap(Event::Opened(pb::RequestOpened {
        request_id: r.id.clone(),
        agent_group: r.agent_group.clone(),
        session: r.session.clone(),
        fingerprint: r.fingerprint.clone(),
        rule: r.spec.rule.clone(),
        expires_at: Some(r.expires_at.into()),
        attempts: r.attempts,
    }))
}

/// `closed`: denied (by `decided_by`, with `reason`) or expired (both empty).
pub(super) fn closed(r: &RequestRow, decided_by: &str, reason: &str) -> pb::DecisionEvent {
    wrap(Event::Closed(pb::RequestClosed {
        request_id: r.id.clone(),
        agent_group: r.agent_group.clone(),
        session: r.session.clone(),
        fingerprint: r.fingerprint.clone(),
        state: r.state.to_pb().into(),
        decided_by: decided_by.to_owned(),
        reason: reason.to_owned(),
    }))
}

/// `grant`: install it.
pub(super) fn grant(g: &GrantRow) -> pb::DecisionEvent {
    wrap(Event::Grant(g.to_pb()))
}

/// `revocation`: remove it.
pub(super) fn revocation(r: &pb::Revocation) -> pb::DecisionEvent {
    wrap(Event::Revocation(r.clone()))
}

impl Store {
    /// Decision events of `host` after cursor `after` (0: from the start), oldest first, at
    /// most `limit` (0: 100); each with its cursor filled in. A grant whose expiry passed is
    /// still returned: the daemon skips it.
    pub async fn decision_events(
        &self,
        host: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<pb::DecisionEvent>, StoreError> {
        let limit = if limit == 0 { 100 } else { limit.min(10_000) };
        let rows = sqlx::query(
            "SELECT id, body FROM decision_events WHERE host = $1 AND id > $2 \
             ORDER BY id LIMIT $3",
        )
        .bind(host)
        .bind(codec::i64_of(after, "cursor")?)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let (id, mut event) = event_of(row)?;
                event.cursor = id.to_string();
                Ok(event)
            })
            .collect()
    }
}

/// A `decision_events` row (`id, body`): its id and event.
pub(super) fn event_of(row: &sqlx::any::AnyRow) -> Result<(i64, pb::DecisionEvent), StoreError> {
    let id: i64 = row.try_get(0)?;
    let body: Vec<u8> = row.try_get(1)?;
    Ok((id, codec::decode(&body, "decision event")?))
}
