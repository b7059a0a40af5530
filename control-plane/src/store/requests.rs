//! Approval requests: opening, joining, reading, listing.
//!
//! A request is keyed by (host, agent group, session, fingerprint) while it is pending; the
//! partial unique index `requests_pending_key` backs that up. Once decided or expired it is
//! never reopened: the next attempt opens a new request.

use std::time::SystemTime;

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row as _};

use super::rows::{DecisionRow, RequestFilter, RequestRow, RequestSpec, RequestState, Verdict};
use super::writer::Writer;
use super::{codec, ids, stream, subjects, Backend, Store, StoreError};
use crate::rpc::pb;

/// Columns of a request, in the order [`request_from`] reads them.
pub(super) const COLUMNS: &str = "id, host, agent_group, session, fingerprint, kind, operation, \
    rule, rule_description, approver_groups, approvals_required, expires_in, max_grant_ttl, \
    max_grant_uses, allow_launcher, reason, state, attempts, first_seen, last_seen, expires_at, \
    grant_id, launching_user, over_cap";

/// Reads a row selected with [`COLUMNS`].
pub(super) fn request_from(row: &AnyRow) -> Result<RequestRow, StoreError> {
    let id: String = row.try_get(0)?;
    let operation: Vec<u8> = row.try_get(6)?;
    let groups: String = row.try_get(9)?;
    let state: String = row.try_get(16)?;
    Ok(RequestRow {
        host: row.try_get(1)?,
        agent_group: row.try_get(2)?,
        session: row.try_get(3)?,
        fingerprint: row.try_get(4)?,
        kind: row.try_get(5)?,
        operation: codec::decode(&operation, "request operation")?,
        spec: RequestSpec {
            rule: row.try_get(7)?,
            rule_description: row.try_get(8)?,
            approver_groups: codec::parse_list(&groups, "approver groups")?,
            approvals_required: codec::u32_of(row.try_get(10)?, "approvals_required")?,
            expires_in: codec::dur(row.try_get(11)?),
            max_grant_ttl: codec::dur(row.try_get(12)?),
            max_grant_uses: codec::u32_of(row.try_get(13)?, "max_grant_uses")?,
            allow_launcher: row.try_get::<i64, _>(14)? != 0,
        },
        reason: row.try_get(15)?,
        state: RequestState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("request {id}: state {state:?}")))?,
        attempts: codec::u32_of(row.try_get(17)?, "attempts")?,
        first_seen: codec::time(row.try_get(18)?),
        last_seen: codec::time(row.try_get(19)?),
        expires_at: codec::time(row.try_get(20)?),
        grant_id: row.try_get(21)?,
        launching_user: row.try_get(22)?,
        over_cap: codec::u32_of(row.try_get(23)?, "over_cap")?,
        id,
    })
}

/// Columns of a decision, in the order [`decision_from`] reads them.
pub(super) const DECISION_COLUMNS: &str =
    "request_id, decided_by, channel, decided_at, verdict, duration, uses, reason, grant_id";

/// Reads a row selected with [`DECISION_COLUMNS`].
pub(super) fn decision_from(row: &AnyRow) -> Result<DecisionRow, StoreError> {
    let verdict: String = row.try_get(4)?;
    let verdict = match verdict.as_str() {
        "approve_once" => Verdict::ApproveOnce,
        "approve_for" => Verdict::ApproveFor {
            duration: codec::dur(row.try_get(5)?),
            uses: codec::u32_of(row.try_get(6)?, "decision uses")?,
        },
        "deny" => Verdict::Deny {
            reason: row.try_get(7)?,
        },
        other => return Err(StoreError::Corrupt(format!("decision verdict {other:?}"))),
    };
    Ok(DecisionRow {
        request_id: row.try_get(0)?,
        decided_by: row.try_get(1)?,
        channel: row.try_get(2)?,
        time: codec::time(row.try_get(3)?),
        verdict,
        grant_id: row.try_get(8)?,
    })
}

/// One request by id; `lock` adds `FOR UPDATE` on PostgreSQL (SQLite has a single writer).
pub(super) async fn load(
    conn: &mut AnyConnection,
    backend: Backend,
    id: &str,
    lock: bool,
) -> Result<Option<RequestRow>, StoreError> {
    let suffix = if lock && backend == Backend::Postgres {
        " FOR UPDATE"
    } else {
        ""
    };
    let sql = format!("SELECT {COLUMNS} FROM requests WHERE id = $1{suffix}");
    let row = sqlx::query(&sql).bind(id).fetch_optional(conn).await?;
    row.as_ref().map(request_from).transpose()
}

/// The decisions of a request, in order.
pub(super) async fn decisions(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Vec<DecisionRow>, StoreError> {
    let sql = format!("SELECT {DECISION_COLUMNS} FROM decisions WHERE request_id = $1 ORDER BY n");
    let rows = sqlx::query(&sql).bind(id).fetch_all(conn).await?;
    rows.iter().map(decision_from).collect()
}

/// Sets a request's state (and grant), in the database and in `r`.
pub(super) async fn set_state(
    conn: &mut AnyConnection,
    r: &mut RequestRow,
    state: RequestState,
    grant_id: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE requests SET state = $1, grant_id = $2 WHERE id = $3")
        .bind(state.as_str())
        .bind(grant_id)
        .bind(&r.id)
        .execute(conn)
        .await?;
    r.state = state;
    r.grant_id = grant_id.map(str::to_owned);
    Ok(())
}

/// Whether [`open_or_join`] created the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Opened {
    /// A new request (its `request` audit record is the caller's to write).
    Created,
    /// An existing pending request.
    Joined,
    /// None opened: the session or the host has as many open requests as it may (why).
    Capped(String),
}

/// The most approval requests open at once, per session and per host: an agent that tries
/// one distinct operation after another would otherwise open a request — and post a chat
/// card — for each. Attempts of an operation that already has its request still join it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestCaps {
    pub per_session: u32,
    pub per_host: u32,
}

impl RequestCaps {
    /// Defaults: 20 per session, 200 per host.
    pub const DEFAULT: RequestCaps = RequestCaps {
        per_session: 20,
        per_host: 200,
    };
}

impl Default for RequestCaps {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Why no request may open for `op` of `host` now, if one may not: the pending, unexpired
/// requests of its session and of its host against the store's `RequestCaps`.
async fn over_cap(
    w: &mut Writer<'_>,
    host: &str,
    op: &pb::Operation,
    now: SystemTime,
) -> Result<Option<String>, StoreError> {
    let caps = w.store().request_caps();
    let count = |sql: &'static str, session: bool| {
        let q = sqlx::query_scalar::<_, i64>(sql)
            .bind(host.to_owned())
            .bind(codec::ms(now));
        if session {
            q.bind(op.agent_group.clone()).bind(op.session.clone())
        } else {
            q
        }
    };
    let session = count(
        "SELECT COUNT(*) FROM requests WHERE host = $1 AND state = 'pending' \
         AND expires_at > $2 AND agent_group = $3 AND session = $4",
        true,
    )
    .fetch_one(w.conn())
    .await?;
    if session >= i64::from(caps.per_session) {
        return Ok(Some(format!(
            "session {:?} of agent group {:?} already has {session} open approval requests \
             (the most per session: server option --max-open-requests-per-session): wait for \
             their decisions, or ask for fewer, broader operations",
            op.session, op.agent_group
        )));
    }
    let all = count(
        "SELECT COUNT(*) FROM requests WHERE host = $1 AND state = 'pending' AND expires_at > $2",
        false,
    )
    .fetch_one(w.conn())
    .await?;
    Ok((all >= i64::from(caps.per_host)).then(|| {
        format!(
            "host {host:?} already has {all} open approval requests (the most per host: \
             server option --max-open-requests-per-host)"
        )
    }))
}

/// Opens the pending request for (host, group, session, fingerprint of `op`) or joins it
/// (`attempts` added, `last_seen` moved, `reason` filled if it had none). A pending request
/// whose time is up is expired first (audit record and `closed` event), then a new one opens.
pub(super) async fn open_or_join(
    w: &mut Writer<'_>,
    host: &str,
    op: &pb::Operation,
    spec: &RequestSpec,
    reason: &str,
    attempts: u32,
    now: SystemTime,
) -> Result<(Option<RequestRow>, Opened), StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM requests WHERE host = $1 AND agent_group = $2 AND session = $3 \
         AND fingerprint = $4 AND state = 'pending'"
    );
    let row = sqlx::query(&sql)
        .bind(host)
        .bind(&op.agent_group)
        .bind(&op.session)
        .bind(&op.fingerprint)
        .fetch_optional(w.conn())
        .await?;
    if let Some(mut r) = row.as_ref().map(request_from).transpose()? {
        if r.expires_at > now {
            r.attempts = r.attempts.saturating_add(attempts);
            r.last_seen = now.max(r.last_seen);
            if r.reason.is_empty() {
                reason.clone_into(&mut r.reason);
            }
            sqlx::query(
                "UPDATE requests SET attempts = $1, last_seen = $2, reason = $3 WHERE id = $4",
            )
            .bind(i64::from(r.attempts))
            .bind(codec::ms(r.last_seen))
            .bind(&r.reason)
            .bind(&r.id)
            .execute(w.conn())
            .await?;
            return Ok((Some(r), Opened::Joined));
        }
        super::decisions::expire(w, r, now).await?;
    }
    if let Some(why) = over_cap(w, host, op, now).await? {
        return Ok((None, Opened::Capped(why)));
    }
    let id = unused_id(w.conn()).await?;
    let r = RequestRow {
        id,
        host: host.to_owned(),
        agent_group: op.agent_group.clone(),
        session: op.session.clone(),
        fingerprint: op.fingerprint.clone(),
        kind: subjects::kind_of(op).as_str().to_owned(),
        operation: op.clone(),
        spec: spec.clone(),
        reason: reason.to_owned(),
        state: RequestState::Pending,
        attempts,
        first_seen: now,
        last_seen: now,
        expires_at: now + spec.expires_in,
        grant_id: None,
        launching_user: op.launching_user.clone(),
        over_cap: 0,
    };
    insert(w.conn(), &r).await?;
    Ok((Some(r), Opened::Created))
}

/// Counts a kernel refusal of `op` that opened no request (over the cap) on the newest
/// pending request of its session, which approvers then see with the flood behind it;
/// returns that request, or None when the session has none (the host's cap was reached).
pub(super) async fn count_over_cap(
    w: &mut Writer<'_>,
    host: &str,
    op: &pb::Operation,
) -> Result<Option<RequestRow>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM requests WHERE host = $1 AND agent_group = $2 AND session = $3 \
         AND state = 'pending' ORDER BY first_seen DESC, id DESC LIMIT 1"
    );
    let row = sqlx::query(&sql)
        .bind(host)
        .bind(&op.agent_group)
        .bind(&op.session)
        .fetch_optional(w.conn())
        .await?;
    let Some(mut r) = row.as_ref().map(request_from).transpose()? else {
        return Ok(None);
    };
    r.over_cap = r.over_cap.saturating_add(1);
    sqlx::query("UPDATE requests SET over_cap = $1 WHERE id = $2")
        .bind(i64::from(r.over_cap))
        .bind(&r.id)
        .execute(w.conn())
        .await?;
    Ok(Some(r))
}

/// A request id not in use (40 random bits: a clash is rare, but cheap to rule out).
async fn unused_id(conn: &mut AnyConnection) -> Result<String, StoreError> {
    loop {
        let id = ids::request_id();
        let taken = sqlx::query("SELECT 1 FROM requests WHERE id = $1")
            .bind(&id)
            .fetch_optional(&mut *conn)
            .await?;
        if taken.is_none() {
            return Ok(id);
        }
    }
}

async fn insert(conn: &mut AnyConnection, r: &RequestRow) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO requests (id, host, agent_group, session, fingerprint, kind, operation, \
         rule, rule_description, approver_groups, approvals_required, expires_in, \
         max_grant_ttl, max_grant_uses, allow_launcher, reason, state, attempts, first_seen, \
         last_seen, expires_at, grant_id, launching_user) VALUES ($1, $2, $3, $4, $5, $6, $7, \
         $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)",
    )
    .bind(&r.id)
    .bind(&r.host)
    .bind(&r.agent_group)
    .bind(&r.session)
    .bind(&r.fingerprint)
    .bind(&r.kind)
    .bind(codec::encode(&r.operation))
    .bind(&r.spec.rule)
    .bind(&r.spec.rule_description)
    .bind(codec::list(&r.spec.approver_groups))
    .bind(i64::from(r.spec.approvals_required))
    .bind(codec::dur_ms(r.spec.expires_in))
    .bind(codec::dur_ms(r.spec.max_grant_ttl))
    .bind(i64::from(r.spec.max_grant_uses))
    .bind(i64::from(r.spec.allow_launcher))
    .bind(&r.reason)
    .bind(r.state.as_str())
    .bind(i64::from(r.attempts))
    .bind(codec::ms(r.first_seen))
    .bind(codec::ms(r.last_seen))
    .bind(codec::ms(r.expires_at))
    .bind(&r.grant_id)
    .bind(&r.launching_user)
    .execute(conn)
    .await?;
    Ok(())
}

impl Store {
    /// Opens (or joins) the pending request for an operation asked ahead of time
    /// (`ForwardRequest`); attempts are not counted. Writes the `request` audit record when
    /// it opens one and an `opened` decision event either way. `Exhausted` when the session
    /// or the host has as many open requests as it may (`RequestCaps`).
    pub async fn forward(
        &self,
        host: &str,
        op: &pb::Operation,
        spec: &RequestSpec,
        reason: &str,
        now: SystemTime,
    ) -> Result<RequestRow, StoreError> {
        let now = codec::trunc(now);
        let mut w = self.writer().await?;
        let (r, opened) = open_or_join(&mut w, host, op, spec, reason, 0, now).await?;
        let Some(r) = r else {
            let why = match opened {
                Opened::Capped(why) => why,
                _ => "no request opened".to_owned(),
            };
            return Err(StoreError::Exhausted(why));
        };
        if opened == Opened::Created {
            w.append(subjects::request(&r, "local"), now)?;
        }
        w.decision_event(host, &stream::opened(&r), now).await?;
        w.commit().await?;
        Ok(r)
    }

    /// One request.
    pub async fn get_request(&self, id: &str) -> Result<Option<RequestRow>, StoreError> {
        let mut conn = self.pool().acquire().await?;
        load(&mut conn, self.backend(), id, false).await
    }

    /// The decisions on a request, in the order they were made.
    pub async fn decisions_of(&self, id: &str) -> Result<Vec<DecisionRow>, StoreError> {
        let mut conn = self.pool().acquire().await?;
        decisions(&mut conn, id).await
    }

    /// Requests matching `f`, oldest first.
    pub async fn list_requests(&self, f: &RequestFilter) -> Result<Vec<RequestRow>, StoreError> {
        let mut sql = format!("SELECT {COLUMNS} FROM requests WHERE 1 = 1");
        let mut binds: Vec<&str> = Vec::new();
        let state = f.state.map(RequestState::as_str);
        for (column, value) in [
            ("state", state),
            ("host", f.host.as_deref()),
            ("agent_group", f.agent_group.as_deref()),
            ("session", f.session.as_deref()),
            ("fingerprint", f.fingerprint.as_deref()),
        ] {
            if let Some(v) = value {
                binds.push(v);
                sql.push_str(&format!(" AND {column} = ${}", binds.len()));
            }
        }
        if let Some(after) = f.after_id.as_deref() {
            binds.push(after);
            sql.push_str(&format!(
                " AND n > (SELECT n FROM requests WHERE id = ${})",
                binds.len()
            ));
        }
        let limit = if f.limit == 0 { 100 } else { f.limit.min(1000) };
        sql.push_str(&format!(" ORDER BY n LIMIT {limit}"));
        let mut query = sqlx::query(&sql);
        for b in binds {
            query = query.bind(b);
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter().map(request_from).collect()
    }
}
