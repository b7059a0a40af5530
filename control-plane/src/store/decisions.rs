//! Deciding requests (N-of-M approvals, denials) and expiring them.
//!
//! The rules (who may decide, limits, N-of-M arithmetic) live in the caller's `judge`; the
//! store only guarantees that it runs on the current request under the writer lock and that
//! what it says is written atomically.

use std::time::SystemTime;

use super::rows::{Close, Decided, DecisionRow, GrantRow, Judgement, RequestRow, RequestState};
use super::writer::Writer;
use super::{codec, grants, requests, stream, subjects, Store, StoreError};
use crate::audit::Timestamp;
use crate::decide::Refusal;

impl Store {
    /// Runs `judge` on the locked request and its decisions, then writes what it says, all in
    /// one transaction (concurrent decisions serialize here).
    ///
    /// `Judgement::Repeat` writes nothing. `Judgement::Record` on a request that is no longer
    /// pending, or whose time is up, writes nothing and fails with `Precondition` (the judge
    /// should have said so itself). A refusal of the judge comes back as
    /// `StoreError::Refused`.
    pub async fn decide<F>(
        &self,
        id: &str,
        now: SystemTime,
        judge: F,
    ) -> Result<Decided, StoreError>
    where
        F: FnOnce(&RequestRow, &[DecisionRow]) -> Result<Judgement, Refusal> + Send,
    {
        let now = codec::trunc(now);
        let mut w = self.writer().await?;
        let backend = self.backend();
        let mut r = requests::load(w.conn(), backend, id, true)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("no request {id}")))?;
        let before = requests::decisions(w.conn(), id).await?;
        let (decided_by, channel, verdict, close) = match judge(&r, &before) {
            Err(refusal) => return Err(StoreError::Refused(refusal)),
            Ok(Judgement::Repeat(decision)) => {
                let grant = match &r.grant_id {
                    Some(g) => grants::load(w.conn(), g).await?,
                    None => None,
                };
                // Read-only: the writer is dropped unmoved, which rolls back nothing.
                return Ok(Decided {
                    request: r,
                    decision,
                    grant,
                    repeated: true,
                });
            }
            Ok(Judgement::Record {
                decided_by,
                channel,
                verdict,
                close,
            }) => (decided_by, channel, verdict, close),
        };
        if r.state != RequestState::Pending {
            return Err(StoreError::Precondition(closed_message(&r, &before)));
        }
        if r.expires_at <= now {
            return Err(StoreError::Precondition(format!(
                "request {id} expired at {}",
                Timestamp::from_system_time(r.expires_at)
            )));
        }

        let mut decision = DecisionRow {
            request_id: r.id.clone(),
            decided_by,
            channel,
            time: now,
            verdict,
            grant_id: None,
        };
        let mut grant = None;
        match close {
            // An approval short of N: `opened` again, so that every view of the request (the
            // chats' cards) shows the progress; daemons keep waiting.
            None => w.decision_event(&r.host, &stream::opened(&r), now).await?,
            Some(Close::Approve {
                uses,
                ttl,
                approvers,
            }) => {
                let g = GrantRow {
                    grant_id: grants::unused_id(w.conn()).await?,
                    request_id: r.id.clone(),
                    host: r.host.clone(),
                    agent_group: r.agent_group.clone(),
                    session: r.session.clone(),
                    fingerprint: r.fingerprint.clone(),
                    uses,
                    uses_consumed: 0,
                    ttl,
                    granted_at: now,
                    approvers,
                    revoked: false,
                };
                grants::insert(w.conn(), &g).await?;
                requests::set_state(w.conn(), &mut r, RequestState::Approved, Some(&g.grant_id))
                    .await?;
                decision.grant_id = Some(g.grant_id.clone());
                grant = Some(g);
            }
            Some(Close::Deny) => {
                requests::set_state(w.conn(), &mut r, RequestState::Denied, None).await?;
            }
        }
        insert_decision(&mut w, &decision, before.len()).await?;

        let approvals = before
            .iter()
            .chain(std::iter::once(&decision))
            .filter(|d| d.verdict.is_approval())
            .count();
        w.append(subjects::decision(&r, &decision, approvals), now)?;
        if let Some(g) = &grant {
            w.append(
                subjects::grant(&r, g, &decision.decided_by, &decision.channel),
                now,
            )?;
            w.decision_event(&r.host, &stream::grant(g), now).await?;
        } else if r.state == RequestState::Denied {
            let reason = match &decision.verdict {
                super::Verdict::Deny { reason } => reason.as_str(),
                _ => "",
            };
            let closed = stream::closed(&r, &decision.decided_by, reason);
            w.decision_event(&r.host, &closed, now).await?;
        }
        w.commit().await?;
        Ok(Decided {
            request: r,
            decision,
            grant,
            repeated: false,
        })
    }

    /// Expires the pending requests whose time is up (at most 1000 per call: call again
    /// while it returns 1000); returns them (state `expired`). Each gets a `decision` audit
    /// record (actor server, decision `expired`) and a `closed` event.
    pub async fn expire_due(&self, now: SystemTime) -> Result<Vec<RequestRow>, StoreError> {
        let now = codec::trunc(now);
        let mut w = self.writer().await?;
        let sql = format!(
            "SELECT {} FROM requests WHERE state = 'pending' AND expires_at <= $1 \
             ORDER BY expires_at LIMIT 1000",
            requests::COLUMNS
        );
        let rows = sqlx::query(&sql)
            .bind(codec::ms(now))
            .fetch_all(w.conn())
            .await?;
        let mut expired = Vec::with_capacity(rows.len());
        for row in &rows {
            let r = requests::request_from(row)?;
            expired.push(expire(&mut w, r, now).await?);
        }
        w.commit().await?;
        Ok(expired)
    }
}

/// Expires one pending request inside `w`.
pub(super) async fn expire(
    w: &mut Writer<'_>,
    mut r: RequestRow,
    now: SystemTime,
) -> Result<RequestRow, StoreError> {
    requests::set_state(w.conn(), &mut r, RequestState::Expired, None).await?;
    let server = w.store().server_id().to_owned();
    w.append(subjects::expiry(&r, &server), now)?;
    w.decision_event(&r.host, &stream::closed(&r, "", ""), now)
        .await?;
    Ok(r)
}

async fn insert_decision(w: &mut Writer<'_>, d: &DecisionRow, n: usize) -> Result<(), StoreError> {
    let (verdict, duration, uses, reason) = match &d.verdict {
        super::Verdict::ApproveOnce => ("approve_once", 0, 1, ""),
        super::Verdict::ApproveFor { duration, uses } => (
            "approve_for",
            codec::dur_ms(*duration),
            i64::from(*uses),
            "",
        ),
        super::Verdict::Deny { reason } => ("deny", 0, 0, reason.as_str()),
    };
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    sqlx::query(
        "INSERT INTO decisions (request_id, n, decided_by, channel, decided_at, verdict, \
         duration, uses, reason, grant_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&d.request_id)
    .bind(n)
    .bind(&d.decided_by)
    .bind(&d.channel)
    .bind(codec::ms(d.time))
    .bind(verdict)
    .bind(duration)
    .bind(uses)
    .bind(reason)
    .bind(&d.grant_id)
    .execute(w.conn())
    .await
    .map_err(|e| match e {
        // The unique (request, person) index: the judge let a second decision through.
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Precondition(format!(
            "{} has already decided on request {}",
            d.decided_by, d.request_id
        )),
        e => StoreError::Database(e),
    })?;
    Ok(())
}

/// "request r-… is already approved (by alice, bob)".
pub(super) fn closed_message(r: &RequestRow, decisions: &[DecisionRow]) -> String {
    let by: Vec<&str> = decisions.iter().map(|d| d.decided_by.as_str()).collect();
    match r.state {
        RequestState::Expired => format!(
            "request {} expired at {}",
            r.id,
            Timestamp::from_system_time(r.expires_at)
        ),
        state if by.is_empty() => format!("request {} is already {}", r.id, state.as_str()),
        state => format!(
            "request {} is already {} (decided by {})",
            r.id,
            state.as_str(),
            by.join(", ")
        ),
    }
}
