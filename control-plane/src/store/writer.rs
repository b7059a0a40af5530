//! The one way to write: a transaction that owns the audit chain until it commits.
//!
//! A [`Writer`] holds (1) the process-wide chain mutex and (2) a row lock on `audit_head`,
//! taken by the transaction's first statement. (1) serialises this process's writers without
//! touching the database; (2) serialises replicas sharing a PostgreSQL database, and on SQLite
//! takes the write lock up front (a deferred transaction that reads first could otherwise
//! fail with SQLITE_BUSY when it starts writing). If the head in the database is not the one
//! in memory (another replica wrote, or our last transaction failed), the chain state is
//! reloaded from the last stored record. Records are buffered and inserted at commit in
//! multi-row statements; decision events wake subscribers only after the commit.

use std::collections::BTreeSet;
use std::time::SystemTime;

use sqlx::AnyConnection;
use sqlx::{Any, Row as _, Transaction};
use tokio::sync::MutexGuard;

use super::audit::parse_record;
use super::{codec, AuditError, CheckpointLog, Store, StoreError};
use crate::audit::{canonical, ChainState, Digest, Entry, Kind, Record, Timestamp, VerifyError};

/// The in-memory chain writer state.
#[derive(Default)]
pub(super) struct ChainSlot {
    /// `None`: must be (re)loaded from the database before the next append.
    state: Option<ChainState>,
    /// Records since the last checkpoint (ChainState keeps it private; mirrored here so that
    /// it can be stored in `audit_head` for a later resume).
    since_checkpoint: u64,
}

/// An open write transaction with the audit chain.
pub(super) struct Writer<'s> {
    store: &'s Store,
    held: Held<'s>,
    tx: Transaction<'static, Any>,
    /// Sealed records not inserted yet.
    records: Vec<Record>,
    /// Hosts that got decision events.
    woken: BTreeSet<String>,
}

/// The chain, held for one transaction.
struct Held<'s> {
    slot: MutexGuard<'s, ChainSlot>,
    /// The chain moved in memory: if the transaction does not commit, reload it.
    moved: bool,
    committed: bool,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if self.moved && !self.committed {
            // The transaction rolls back; the chain in memory went ahead of the database.
            self.slot.state = None;
        }
    }
}

impl Store {
    /// Starts a write transaction (waits for the chain).
    pub(super) async fn writer(&self) -> Result<Writer<'_>, StoreError> {
        let mut slot = self.inner.chain.lock().await;
        let mut tx = self.pool().begin().await?;
        // RETURNING on a no-op update: lock and read the head in one round trip.
        let row = sqlx::query(
            "UPDATE audit_head SET next_seq = next_seq WHERE id = 1 \
             RETURNING next_seq, head, since_checkpoint",
        )
        .fetch_one(&mut *tx)
        .await?;
        let next_seq = codec::u64_of(row.try_get(0)?, "audit_head.next_seq")?;
        let head_text: String = row.try_get(1)?;
        let head = Digest::from_hex(&head_text)
            .ok_or_else(|| StoreError::Corrupt("audit_head.head is not a SHA-256 hex".into()))?;
        let since = codec::u64_of(row.try_get(2)?, "audit_head.since_checkpoint")?;
        let current = slot
            .state
            .as_ref()
            .is_some_and(|s| s.next_seq() == next_seq && s.head() == head);
        if !current {
            slot.state = Some(self.load_chain(&mut tx, next_seq, head, since).await?);
            slot.since_checkpoint = since;
        }
        Ok(Writer {
            store: self,
            held: Held {
                slot,
                moved: false,
                committed: false,
            },
            tx,
            records: Vec::new(),
            woken: BTreeSet::new(),
        })
    }

    /// Rebuilds the chain state from the last stored record, after checking that it is the
    /// record `audit_head` names.
    async fn load_chain(
        &self,
        conn: &mut AnyConnection,
        next_seq: u64,
        head: Digest,
        since: u64,
    ) -> Result<ChainState, StoreError> {
        let inner = &self.inner;
        let Some(last_seq) = next_seq.checked_sub(1) else {
            return Ok(ChainState::new(
                inner.key.clone(),
                inner.interval,
                inner.server_id.clone(),
            ));
        };
        let row = sqlx::query("SELECT record FROM audit_records WHERE seq = $1")
            .bind(codec::i64_of(last_seq, "audit seq")?)
            .fetch_optional(&mut *conn)
            .await?;
        let text: String = match row {
            Some(row) => row.try_get(0)?,
            None => {
                return Err(StoreError::Corrupt(format!(
                    "audit_head names seq {last_seq}, which is not stored"
                )))
            }
        };
        // Its content must match its hash, and its hash the head the table names: the chain
        // never continues from an edited record.
        let last = parse_record(&text, last_seq)?;
        let rehash = canonical::record_hash(&last).map_err(crate::audit::ChainError::from)?;
        if last.seq != last_seq || rehash != last.hash || last.hash != head {
            return Err(AuditError::Verify(VerifyError::HashMismatch {
                line: last_seq + 1,
                seq: last_seq,
            })
            .into());
        }
        tracing::debug!(next_seq, "store: audit chain resumed");
        Ok(ChainState::resume(
            inner.key.clone(),
            inner.interval,
            inner.server_id.clone(),
            &last,
            since,
        ))
    }
}

impl Writer<'_> {
    /// The transaction's connection.
    pub(super) fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    /// The store.
    pub(super) fn store(&self) -> &Store {
        self.store
    }

    /// Seals `entry` into the chain (plus a checkpoint when one is due); the record is
    /// inserted at commit. Returns the entry's record.
    pub(super) fn append(&mut self, entry: Entry, now: SystemTime) -> Result<&Record, StoreError> {
        let slot = &mut *self.held.slot;
        let state = slot
            .state
            .as_mut()
            .ok_or_else(|| StoreError::Corrupt("audit chain not loaded".into()))?;
        self.held.moved = true;
        let sealed = state.append(entry, Timestamp::from_system_time(now))?;
        let index = self.records.len();
        for record in sealed {
            slot.since_checkpoint = match record.kind {
                Kind::Checkpoint => 0,
                _ => slot.since_checkpoint + 1,
            };
            self.records.push(record);
        }
        Ok(&self.records[index])
    }

    /// Records written since the last checkpoint (none signed them yet).
    pub(super) fn unsigned(&self) -> u64 {
        self.held.slot.since_checkpoint
    }

    /// Writes a checkpoint over the current head (`ChainError::Empty` on an empty chain).
    pub(super) fn checkpoint(&mut self, now: SystemTime) -> Result<&Record, StoreError> {
        let slot = &mut *self.held.slot;
        let state = slot
            .state
            .as_mut()
            .ok_or_else(|| StoreError::Corrupt("audit chain not loaded".into()))?;
        let record = state.checkpoint(Timestamp::from_system_time(now))?;
        self.held.moved = true;
        slot.since_checkpoint = 0;
        let index = self.records.len();
        self.records.push(record);
        Ok(&self.records[index])
    }

    /// Inserts a decision event for `host` (cursor assigned by the database).
    pub(super) async fn decision_event(
        &mut self,
        host: &str,
        event: &crate::rpc::pb::DecisionEvent,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO decision_events (host, created, body) VALUES ($1, $2, $3)")
            .bind(host)
            .bind(codec::ms(now))
            .bind(codec::encode(event))
            .execute(&mut *self.tx)
            .await?;
        self.woken.insert(host.to_owned());
        Ok(())
    }

    /// Inserts the buffered records, moves `audit_head`, commits, then wakes subscribers.
    pub(super) async fn commit(self) -> Result<(), StoreError> {
        let Writer {
            store,
            mut held,
            mut tx,
            records,
            woken,
        } = self;
        super::audit::insert_records(&mut tx, store.backend(), &records).await?;
        if held.moved {
            let state = held
                .slot
                .state
                .as_ref()
                .ok_or_else(|| StoreError::Corrupt("audit chain not loaded".into()))?;
            let (next, head) = (state.next_seq(), state.head().to_hex());
            let since = held.slot.since_checkpoint;
            sqlx::query(
                "UPDATE audit_head SET next_seq = $1, head = $2, since_checkpoint = $3 \
                 WHERE id = 1",
            )
            .bind(codec::i64_of(next, "audit seq")?)
            .bind(head)
            .bind(codec::i64_of(since, "records since checkpoint")?)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        held.committed = true;
        drop(held);
        CheckpointLog::publish(store.inner.checkpoint_log.get(), &records);
        for host in woken {
            // No receiver is fine: nobody is streaming.
            let _ = store.inner.wake.send(host);
        }
        Ok(())
    }
}
