//! The stored audit trail: appending, reading in chain order, checkpoints, verification.

use std::time::SystemTime;

use sqlx::Row as _;

use sqlx::AnyConnection;

use super::{bulk, codec, AuditError, Backend, Store, StoreError};
use crate::audit::{self, Record, Verifier, VerifyError};

/// Records read per query while verifying (bounds memory on a long chain).
const VERIFY_PAGE: u32 = 2000;

impl Store {
    /// Appends one record (and a checkpoint when one is due); returns the entry's record.
    /// For records that belong to no other store operation (e.g. a person's `login`).
    pub async fn audit_append(
        &self,
        entry: audit::Entry,
        now: SystemTime,
    ) -> Result<audit::Record, StoreError> {
        let mut w = self.writer().await?;
        let record = w.append(entry, now)?.clone();
        w.commit().await?;
        Ok(record)
    }

    /// At most `limit` records (0: 1000) after `after_seq` (None: from seq 0), in chain
    /// order, exactly as stored (they carry their own hashes).
    pub async fn audit_records(
        &self,
        after_seq: Option<u64>,
        limit: u32,
    ) -> Result<Vec<audit::Record>, StoreError> {
        let limit = if limit == 0 { 1000 } else { limit.min(10_000) };
        let after = match after_seq {
            Some(s) => codec::i64_of(s, "after_seq")?,
            None => -1,
        };
        let rows = sqlx::query(
            "SELECT seq, record FROM audit_records WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let seq = codec::u64_of(row.try_get(0)?, "audit seq")?;
                parse_record(&row.try_get::<String, _>(1)?, seq)
            })
            .collect()
    }

    /// Writes a checkpoint over the current head now (e.g. before an export, so that it ends
    /// with a signed head), even right after another one. An empty chain is
    /// `StoreError::Audit(AuditError::Chain(ChainError::Empty))`.
    pub async fn audit_checkpoint(&self, now: SystemTime) -> Result<(), StoreError> {
        let mut w = self.writer().await?;
        w.checkpoint(now)?;
        w.commit().await
    }

    /// Writes a checkpoint when records were written since the last one (the periodic
    /// checkpoint: the unsigned tail of the trail stays short however few records come).
    /// Returns whether it wrote one.
    pub async fn audit_checkpoint_if_unsigned(&self, now: SystemTime) -> Result<bool, StoreError> {
        let mut w = self.writer().await?;
        if w.unsigned() == 0 {
            return Ok(false);
        }
        w.checkpoint(now)?;
        w.commit().await?;
        Ok(true)
    }

    /// Re-verifies every stored record (hashes, links, checkpoint signatures) with the
    /// store's key. A bad chain is `StoreError::Audit(AuditError::Verify(e))`, `e.seq()`
    /// naming the first bad record; an empty chain is `VerifyError::Empty`.
    pub async fn audit_verify(&self) -> Result<audit::Summary, StoreError> {
        let mut verifier = Verifier::new(self.verifying_key());
        let mut after = None;
        loop {
            // Raw text, not `audit_records`: a row that does not even parse must be reported
            // as a verification failure at its place in the chain.
            let rows = sqlx::query(
                "SELECT seq, record FROM audit_records WHERE seq > $1 ORDER BY seq LIMIT $2",
            )
            .bind(after.map_or(Ok(-1), |s| codec::i64_of(s, "seq"))?)
            .bind(i64::from(VERIFY_PAGE))
            .fetch_all(self.pool())
            .await?;
            for row in &rows {
                let seq = codec::u64_of(row.try_get(0)?, "audit seq")?;
                let text: String = row.try_get(1)?;
                verifier
                    .push_line(seq + 1, text.as_bytes())
                    .map_err(AuditError::Verify)?;
                after = Some(seq);
            }
            if rows.len() < VERIFY_PAGE as usize {
                break;
            }
        }
        Ok(verifier.finish().map_err(AuditError::Verify)?)
    }
}

/// Parses a stored record line.
pub(super) fn parse_record(text: &str, seq: u64) -> Result<Record, StoreError> {
    serde_json::from_str(text).map_err(|e| {
        AuditError::Verify(VerifyError::Malformed {
            line: seq + 1,
            expected_seq: seq,
            message: e.to_string(),
        })
        .into()
    })
}

/// Multi-row inserts of sealed records.
///
/// `record` holds serde_json's plain serialization, not the canonical form: verification
/// parses it and re-hashes the parsed record, so the text need not be canonical, and
/// serialising the struct directly costs a fraction of building the canonical form again.
pub(super) async fn insert_records(
    conn: &mut AnyConnection,
    backend: Backend,
    records: &[Record],
) -> Result<(), StoreError> {
    struct Row<'a> {
        record: &'a Record,
        seq: i64,
        recorded: i64,
        json: String,
    }
    let mut rows = Vec::with_capacity(records.len());
    for record in records {
        rows.push(Row {
            record,
            seq: codec::i64_of(record.seq, "audit seq")?,
            recorded: codec::ms(record.time.system_time()),
            json: serde_json::to_string(record).map_err(|e| {
                crate::audit::ChainError::Encode(crate::audit::EncodeError::from(e))
            })?,
        });
    }
    bulk::insert(
        conn,
        backend,
        "INSERT INTO audit_records \
         (seq, recorded, kind, actor_kind, actor_id, host, agent, session, rule, record)",
        "",
        10,
        &rows,
        |q, r| {
            let (actor, subject) = (&r.record.actor, &r.record.subject);
            q.bind(r.seq)
                .bind(r.recorded)
                .bind(r.record.kind.as_str())
                .bind(actor.kind.as_str())
                .bind(actor.id.as_str())
                .bind(subject.host.as_deref())
                .bind(subject.agent.as_deref())
                .bind(subject.session.as_deref())
                .bind(subject.rule.as_deref())
                .bind(r.json.as_str())
        },
    )
    .await?;
    Ok(())
}
