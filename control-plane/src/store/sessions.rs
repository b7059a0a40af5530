//! Per-session kernel counters reported by hosts (`ReportSessions`): the latest counts per
//! (host, session cgroup), and an `events_missing` audit record for every increase of the
//! events the kernel could not send.

use std::time::SystemTime;

use sqlx::Row as _;

use super::{codec, subjects, Store, StoreError};
use crate::rpc::pb;

/// Events of a session that reached no event log since the previous report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Missing {
    pub agent_group: String,
    pub session: String,
    /// Events that did not fit the ring buffer.
    pub events_lost: u64,
    /// Refusal events over the session's rate.
    pub events_limited: u64,
}

impl Store {
    /// Stores `sessions` as `host`'s latest counts and audits every increase of missing
    /// events, in one transaction; returns the increases. Counts below the stored ones (the
    /// kernel forgot the session and began again), or a cgroup id now naming another session,
    /// start from zero.
    pub async fn report_sessions(
        &self,
        host: &str,
        sessions: &[pb::SessionCounters],
        now: SystemTime,
    ) -> Result<Vec<Missing>, StoreError> {
        let now = codec::trunc(now);
        let mut w = self.writer().await?;
        let mut missing = Vec::new();
        for s in sessions {
            let cgroup_id = codec::i64_of(s.cgroup_id, "cgroup_id")?;
            let before = sqlx::query(
                "SELECT agent_group, session, events_lost, events_limited \
                 FROM session_counters WHERE host = $1 AND cgroup_id = $2",
            )
            .bind(host)
            .bind(cgroup_id)
            .fetch_optional(w.conn())
            .await?;
            let (mut lost, mut limited) = (s.events_lost, s.events_limited);
            if let Some(row) = before {
                let group: String = row.try_get(0)?;
                let session: String = row.try_get(1)?;
                let was_lost = codec::u64_of(row.try_get(2)?, "events_lost")?;
                let was_limited = codec::u64_of(row.try_get(3)?, "events_limited")?;
                let same = group == s.agent_group && session == s.session;
                if same && was_lost <= lost && was_limited <= limited {
                    lost -= was_lost;
                    limited -= was_limited;
                }
            }
            sqlx::query(
                "INSERT INTO session_counters (host, cgroup_id, agent_group, session, refused, \
                 granted, events_lost, events_limited, updated) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (host, cgroup_id) DO UPDATE SET agent_group = excluded.agent_group, \
                 session = excluded.session, refused = excluded.refused, \
                 granted = excluded.granted, events_lost = excluded.events_lost, \
                 events_limited = excluded.events_limited, updated = excluded.updated",
            )
            .bind(host)
            .bind(cgroup_id)
            .bind(&s.agent_group)
            .bind(&s.session)
            .bind(codec::i64_of(s.refused, "refused")?)
            .bind(codec::i64_of(s.granted, "granted")?)
            .bind(codec::i64_of(s.events_lost, "events_lost")?)
            .bind(codec::i64_of(s.events_limited, "events_limited")?)
            .bind(codec::ms(now))
            .execute(w.conn())
            .await?;
            if lost > 0 || limited > 0 {
                w.append(subjects::events_missing(host, s, lost, limited), now)?;
                missing.push(Missing {
                    agent_group: s.agent_group.clone(),
                    session: s.session.clone(),
                    events_lost: lost,
                    events_limited: limited,
                });
            }
        }
        w.commit().await?;
        Ok(missing)
    }
}
