//! Daemons: registration and the per-host upload acknowledgement.

use std::time::SystemTime;

use sqlx::{AnyConnection, Row as _};

use super::{codec, subjects, Store, StoreError};
use crate::rpc::pb;

/// The acknowledged sequence of `host`, creating its row if it never registered (uploads
/// before a registration are accepted: the daemon may have registered with another replica
/// that failed before committing).
pub(super) async fn acked(
    conn: &mut AnyConnection,
    host: &str,
    now: SystemTime,
) -> Result<u64, StoreError> {
    let row = sqlx::query(
        "INSERT INTO hosts (host, acked, agent_version, kernel, mode, agent_groups, \
         policy_revision, first_seen, last_seen) VALUES ($1, 0, '', '', 0, '[]', '', $2, $2) \
         ON CONFLICT (host) DO UPDATE SET last_seen = excluded.last_seen RETURNING acked",
    )
    .bind(host)
    .bind(codec::ms(now))
    .fetch_one(conn)
    .await?;
    codec::u64_of(row.try_get(0)?, "hosts.acked")
}

/// Moves the acknowledgement of `host`.
pub(super) async fn set_acked(
    conn: &mut AnyConnection,
    host: &str,
    acked: u64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE hosts SET acked = $1 WHERE host = $2")
        .bind(codec::i64_of(acked, "sequence")?)
        .bind(host)
        .execute(conn)
        .await?;
    Ok(())
}

impl Store {
    /// Records a daemon's registration (and a `login` audit record, actor host); returns the
    /// last sequence acknowledged for the host, where its upload resumes.
    pub async fn register_host(
        &self,
        host: &str,
        reg: &pb::RegisterRequest,
        now: SystemTime,
    ) -> Result<u64, StoreError> {
        let mut w = self.writer().await?;
        let row = sqlx::query(
            "INSERT INTO hosts (host, acked, agent_version, kernel, mode, agent_groups, \
             policy_revision, first_seen, last_seen) VALUES ($1, 0, $2, $3, $4, $5, $6, $7, $7) \
             ON CONFLICT (host) DO UPDATE SET agent_version = excluded.agent_version, \
             kernel = excluded.kernel, mode = excluded.mode, agent_groups = excluded.agent_groups, \
             policy_revision = excluded.policy_revision, last_seen = excluded.last_seen \
             RETURNING acked",
        )
        .bind(host)
        .bind(&reg.agent_version)
        .bind(&reg.kernel)
        .bind(i64::from(reg.mode))
        .bind(codec::list(&reg.agent_groups))
        .bind(&reg.policy_revision)
        .bind(codec::ms(now))
        .fetch_one(w.conn())
        .await?;
        let acked = codec::u64_of(row.try_get(0)?, "hosts.acked")?;
        w.append(subjects::host_login(host, reg), now)?;
        w.commit().await?;
        Ok(acked)
    }
}
