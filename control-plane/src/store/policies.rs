//! Policy revisions: append-only, numbered `p-0001`, `p-0002` … (zero-padded so that ids
//! sort by age), with optimistic concurrency on the revision an author edited.

use std::time::SystemTime;

use sqlx::any::AnyRow;
use sqlx::Row as _;

use super::rows::PolicyRow;
use super::{codec, subjects, Store, StoreError};

const COLUMNS: &str = "revision, yaml, author, comment, created";

fn policy_from(row: &AnyRow) -> Result<PolicyRow, StoreError> {
    Ok(PolicyRow {
        revision: row.try_get(0)?,
        yaml: row.try_get(1)?,
        author: row.try_get(2)?,
        comment: row.try_get(3)?,
        created: codec::time(row.try_get(4)?),
    })
}

impl Store {
    /// Stores a new revision if `base_revision` is the current one (`""` when there is none
    /// yet), else `Conflict`; writes a `policy_change` audit record. Validation is the
    /// caller's.
    pub async fn put_policy(
        &self,
        yaml: &str,
        author: &str,
        comment: &str,
        base_revision: &str,
        now: SystemTime,
    ) -> Result<PolicyRow, StoreError> {
        let now = codec::trunc(now);
        let mut w = self.writer().await?;
        // The writer lock serialises puts, so "read the newest, insert the next" is safe.
        let newest = sqlx::query("SELECT n, revision FROM policies ORDER BY n DESC LIMIT 1")
            .fetch_optional(w.conn())
            .await?;
        let (n, current) = match newest {
            Some(row) => (row.try_get::<i64, _>(0)?, row.try_get::<String, _>(1)?),
            None => (0, String::new()),
        };
        if current != base_revision {
            return Err(StoreError::Conflict(if current.is_empty() {
                format!("base revision {base_revision} does not exist: no policy is stored yet")
            } else {
                format!(
                    "the current policy is revision {current}, not {}: fetch it and apply \
                     your change to it",
                    if base_revision.is_empty() {
                        "empty"
                    } else {
                        base_revision
                    }
                )
            }));
        }
        let n = n + 1;
        let row = PolicyRow {
            revision: format!("p-{n:04}"),
            yaml: yaml.to_owned(),
            author: author.to_owned(),
            comment: comment.to_owned(),
            created: now,
        };
        sqlx::query(
            "INSERT INTO policies (n, revision, yaml, author, comment, created) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(n)
        .bind(&row.revision)
        .bind(&row.yaml)
        .bind(&row.author)
        .bind(&row.comment)
        .bind(codec::ms(now))
        .execute(w.conn())
        .await?;
        w.append(subjects::policy_change(&row, base_revision), now)?;
        w.commit().await?;
        Ok(row)
    }

    /// The newest revision.
    pub async fn current_policy(&self) -> Result<Option<PolicyRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM policies ORDER BY n DESC LIMIT 1");
        let row = sqlx::query(&sql).fetch_optional(self.pool()).await?;
        row.as_ref().map(policy_from).transpose()
    }

    /// One revision.
    pub async fn get_policy(&self, revision: &str) -> Result<Option<PolicyRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM policies WHERE revision = $1");
        let row = sqlx::query(&sql)
            .bind(revision)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(policy_from).transpose()
    }

    /// Revisions newest first, at most `limit` (0: 100), older than `before` when given
    /// (page token; an unknown revision is `NotFound`).
    pub async fn policy_history(
        &self,
        limit: u32,
        before: Option<&str>,
    ) -> Result<Vec<PolicyRow>, StoreError> {
        let limit = i64::from(if limit == 0 { 100 } else { limit.min(1000) });
        let rows = match before {
            None => {
                let sql = format!("SELECT {COLUMNS} FROM policies ORDER BY n DESC LIMIT $1");
                sqlx::query(&sql).bind(limit).fetch_all(self.pool()).await?
            }
            Some(before) => {
                let start = sqlx::query("SELECT n FROM policies WHERE revision = $1")
                    .bind(before)
                    .fetch_optional(self.pool())
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("no policy revision {before}")))?;
                let sql =
                    format!("SELECT {COLUMNS} FROM policies WHERE n < $1 ORDER BY n DESC LIMIT $2");
                sqlx::query(&sql)
                    .bind(start.try_get::<i64, _>(0)?)
                    .bind(limit)
                    .fetch_all(self.pool())
                    .await?
            }
        };
        rows.iter().map(policy_from).collect()
    }
}
