//! Grants: issuing (for `decide`), reading, counting uses, revoking.

use std::time::SystemTime;

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row as _};

use super::rows::GrantRow;
use super::{codec, ids, requests, stream, subjects, Store, StoreError};
use crate::audit::Timestamp;
use crate::rpc::pb;

const COLUMNS: &str = "grant_id, request_id, host, agent_group, session, fingerprint, uses, \
    uses_consumed, ttl, granted_at, approvers, revoked_at";

fn grant_from(row: &AnyRow) -> Result<GrantRow, StoreError> {
    let approvers: String = row.try_get(10)?;
    Ok(GrantRow {
        grant_id: row.try_get(0)?,
        request_id: row.try_get(1)?,
        host: row.try_get(2)?,
        agent_group: row.try_get(3)?,
        session: row.try_get(4)?,
        fingerprint: row.try_get(5)?,
        uses: codec::u32_of(row.try_get(6)?, "grant uses")?,
        uses_consumed: codec::u32_of(row.try_get(7)?, "grant uses_consumed")?,
        ttl: codec::dur(row.try_get(8)?),
        granted_at: codec::time(row.try_get(9)?),
        approvers: codec::parse_list(&approvers, "grant approvers")?,
        revoked: row.try_get::<Option<i64>, _>(11)?.is_some(),
    })
}

/// One grant.
pub(super) async fn load(
    conn: &mut AnyConnection,
    grant_id: &str,
) -> Result<Option<GrantRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM grants WHERE grant_id = $1");
    let row = sqlx::query(&sql)
        .bind(grant_id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(grant_from).transpose()
}

/// A grant id not in use.
pub(super) async fn unused_id(conn: &mut AnyConnection) -> Result<String, StoreError> {
    loop {
        let id = ids::grant_id();
        if load(&mut *conn, &id).await?.is_none() {
            return Ok(id);
        }
    }
}

/// Stores a new grant.
pub(super) async fn insert(conn: &mut AnyConnection, g: &GrantRow) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO grants (grant_id, request_id, host, agent_group, session, fingerprint, \
         uses, uses_consumed, ttl, granted_at, approvers) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&g.grant_id)
    .bind(&g.request_id)
    .bind(&g.host)
    .bind(&g.agent_group)
    .bind(&g.session)
    .bind(&g.fingerprint)
    .bind(i64::from(g.uses))
    .bind(i64::from(g.uses_consumed))
    .bind(codec::dur_ms(g.ttl))
    .bind(codec::ms(g.granted_at))
    .bind(codec::list(&g.approvers))
    .execute(conn)
    .await?;
    Ok(())
}

/// Adds `uses` reported uses to a grant of `host`; returns its request id (None: no such
/// grant on that host, e.g. a local grant or a forged id — the use is still audited).
pub(super) async fn consume(
    conn: &mut AnyConnection,
    host: &str,
    grant_id: &str,
    uses: u32,
) -> Result<Option<String>, StoreError> {
    let row = sqlx::query(
        "UPDATE grants SET uses_consumed = uses_consumed + $1 \
         WHERE grant_id = $2 AND host = $3 RETURNING request_id",
    )
    .bind(i64::from(uses))
    .bind(grant_id)
    .bind(host)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| r.try_get(0)).transpose()?)
}

impl Store {
    /// One grant.
    pub async fn get_grant(&self, grant_id: &str) -> Result<Option<GrantRow>, StoreError> {
        let mut conn = self.pool().acquire().await?;
        load(&mut conn, grant_id).await
    }

    /// Revokes a grant that is neither revoked, expired nor used up (else `Precondition`);
    /// writes a `decision` audit record (decision `revoked`) and a `revocation` event for the
    /// host. Who may revoke is the caller's check.
    pub async fn revoke(
        &self,
        grant_id: &str,
        by: &str,
        reason: &str,
        now: SystemTime,
    ) -> Result<pb::Revocation, StoreError> {
        let now = codec::trunc(now);
        let mut w = self.writer().await?;
        let g = load(w.conn(), grant_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("no grant {grant_id}")))?;
        if g.revoked {
            return Err(StoreError::Precondition(format!(
                "grant {grant_id} is already revoked"
            )));
        }
        if g.expires_at() <= now {
            return Err(StoreError::Precondition(format!(
                "grant {grant_id} expired at {}",
                Timestamp::from_system_time(g.expires_at())
            )));
        }
        if g.uses != 0 && g.uses_consumed >= g.uses {
            return Err(StoreError::Precondition(format!(
                "grant {grant_id} is used up ({} of {} uses)",
                g.uses_consumed, g.uses
            )));
        }
        sqlx::query(
            "UPDATE grants SET revoked_at = $1, revoked_by = $2, revoke_reason = $3 \
             WHERE grant_id = $4",
        )
        .bind(codec::ms(now))
        .bind(by)
        .bind(reason)
        .bind(grant_id)
        .execute(w.conn())
        .await?;
        let backend = self.backend();
        let rule = requests::load(w.conn(), backend, &g.request_id, false)
            .await?
            .map(|r| r.spec.rule)
            .unwrap_or_default();
        w.append(subjects::revocation(&g, &rule, by, reason), now)?;
        let revocation = pb::Revocation {
            grant_id: grant_id.to_owned(),
            revoked_by: by.to_owned(),
            reason: reason.to_owned(),
            time: Some(now.into()),
        };
        w.decision_event(&g.host, &stream::revocation(&revocation), now)
            .await?;
        w.commit().await?;
        Ok(revocation)
    }
}
