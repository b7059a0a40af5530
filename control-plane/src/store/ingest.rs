//! Uploaded events: idempotent by (host, sequence), each one audited, `approve` refusals
//! opening or joining requests, grant uses counted — one transaction per batch.
//!
//! The acknowledgement is the highest *contiguous* sequence stored: events after a gap are
//! stored (and audited) at once, but the daemon keeps them until the gap is filled.

use std::collections::{HashMap, HashSet};
use std::time::SystemTime;

use countersign_api::verdict::{Action, Outcome, Said};
use sqlx::Row as _;

use super::requests::{self, open_or_join, Opened};
use super::rows::{Ingest, IngestOutcome, RequestRow};
use super::writer::Writer;
use super::{bulk, codec, grants, hosts, stream, subjects, Store, StoreError};
use crate::rpc::pb;

/// The flag of an approve refusal that opened no request because its session or host has as
/// many open requests as it may (`RequestCaps`).
pub const FLOOD_FLAG: &str = "not_approvable_flood";

/// An event as inserted.
struct EventRow<'a> {
    event: &'a pb::EventRecord,
    said: Said,
    seq: i64,
    event_time: i64,
    request_id: Option<String>,
    body: Vec<u8>,
}

/// Requests touched by a batch, in first-touch order.
#[derive(Default)]
struct Touched {
    order: Vec<String>,
    rows: HashMap<String, (RequestRow, Opened)>,
}

impl Touched {
    fn note(&mut self, r: RequestRow, how: Opened) {
        match self.rows.get_mut(&r.id) {
            // Created earlier in this batch and joined since: still "opened".
            Some(entry) => entry.0 = r,
            None => {
                self.order.push(r.id.clone());
                self.rows.insert(r.id.clone(), (r, how));
            }
        }
    }
}

impl Store {
    /// Stores a batch of events of `host` (duplicates and already acknowledged sequences
    /// skipped) with their audit records, the requests they open or join and the grant uses
    /// they report, in one transaction. Sequence 0 is invalid (sequences start at 1).
    pub async fn ingest(
        &self,
        host: &str,
        mut batch: Vec<Ingest>,
        now: SystemTime,
    ) -> Result<IngestOutcome, StoreError> {
        if batch.iter().any(|i| i.event.sequence == 0) {
            return Err(StoreError::Invalid(
                "events[].sequence: sequences start at 1".into(),
            ));
        }
        batch.sort_by_key(|i| i.event.sequence);
        batch.dedup_by_key(|i| i.event.sequence);

        let now = codec::trunc(now);
        let mut w = self.writer().await?;
        let acked = hosts::acked(w.conn(), host, now).await?;
        batch.retain(|i| i.event.sequence > acked);
        let stored_before = stored_in_range(&mut w, host, &batch).await?;
        batch.retain(|i| !stored_before.contains(&i.event.sequence));

        let mut touched = Touched::default();
        let mut rows = Vec::with_capacity(batch.len());
        for ingest in &mut batch {
            let mut request_id = None;
            let mut opened = None;
            let said = Said::of(&ingest.event);
            let ev = &ingest.event;
            if said.outcome == Some(Outcome::Granted) && !ev.grant_id.is_empty() {
                request_id = grants::consume(w.conn(), host, &ev.grant_id, 1).await?;
            } else if let (true, Some(spec), Some(op)) =
                (said.asks_approval(), &ingest.request, &ev.operation)
            {
                match open_or_join(&mut w, host, op, spec, "", 1, now).await? {
                    (Some(r), how) => {
                        request_id = Some(r.id.clone());
                        if how == Opened::Created {
                            opened = Some(r.clone());
                        }
                        touched.note(r, how);
                    }
                    (None, how) => {
                        // Evidence all the same: stored and audited, with the reason as a flag,
                        // and counted on the session's newest open request for its approvers.
                        tracing::warn!(host, sequence = ev.sequence, why = ?how, "an approve refusal over the open request limit: stored, no request opened");
                        if let Some(r) = requests::count_over_cap(&mut w, host, op).await? {
                            touched.note(r, Opened::Joined);
                        }
                        ingest.event.flags.push(FLOOD_FLAG.to_owned());
                    }
                }
            }
            let ingest: &Ingest = ingest;
            let ev = &ingest.event;
            w.append(subjects::event(host, ev, &said, request_id.as_deref()), now)?;
            if let Some(r) = &opened {
                // After the attempt that caused it.
                w.append(subjects::request(r, "kernel"), now)?;
            }
            rows.push(EventRow {
                event: ev,
                said,
                seq: codec::i64_of(ev.sequence, "sequence")?,
                event_time: ev
                    .time
                    .and_then(|t| SystemTime::try_from(t).ok())
                    .map_or(0, codec::ms),
                request_id,
                body: codec::encode(ev),
            });
        }
        let received = codec::ms(now);
        let backend = self.backend();
        bulk::insert(
            w.conn(),
            backend,
            "INSERT INTO events \
             (host, seq, event_time, received, action, outcome, rule, request_id, body)",
            "ON CONFLICT (host, seq) DO NOTHING",
            9,
            &rows,
            |q, e| {
                q.bind(host.to_owned())
                    .bind(e.seq)
                    .bind(e.event_time)
                    .bind(received)
                    .bind(e.said.action.map_or("", Action::as_str))
                    .bind(e.said.outcome.map_or("", Outcome::as_str))
                    .bind(e.event.rule.as_str())
                    .bind(&e.request_id)
                    .bind(e.body.as_slice())
            },
        )
        .await?;

        let mut outcome = IngestOutcome {
            stored: rows.len(),
            ..IngestOutcome::default()
        };
        for id in &touched.order {
            if let Some((r, how)) = touched.rows.remove(id) {
                w.decision_event(host, &stream::opened(&r), now).await?;
                match how {
                    Opened::Created => outcome.opened.push(r),
                    // (A capped request is never touched: it does not exist.)
                    Opened::Joined | Opened::Capped(_) => outcome.joined.push(r),
                }
            }
        }

        let mut seqs: Vec<u64> = batch.iter().map(|i| i.event.sequence).collect();
        seqs.extend(stored_before);
        seqs.sort_unstable();
        outcome.acked = contiguous(&mut w, host, acked, &seqs).await?;
        if outcome.acked != acked {
            hosts::set_acked(w.conn(), host, outcome.acked).await?;
        }
        w.commit().await?;
        Ok(outcome)
    }
}

/// Sequences of the batch's range already stored (after a gap, or by a retried upload whose
/// answer was lost).
async fn stored_in_range(
    w: &mut Writer<'_>,
    host: &str,
    batch: &[Ingest],
) -> Result<HashSet<u64>, StoreError> {
    let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
        return Ok(HashSet::new());
    };
    let rows = sqlx::query("SELECT seq FROM events WHERE host = $1 AND seq >= $2 AND seq <= $3")
        .bind(host)
        .bind(codec::i64_of(first.event.sequence, "sequence")?)
        .bind(codec::i64_of(last.event.sequence, "sequence")?)
        .fetch_all(w.conn())
        .await?;
    rows.iter()
        .map(|r| codec::u64_of(r.try_get(0)?, "events.seq"))
        .collect()
}

/// The highest sequence reachable from `acked` without a gap: first through `seqs` (sorted,
/// stored now or found stored), then through events stored earlier beyond them (a gap that
/// this batch filled).
async fn contiguous(
    w: &mut Writer<'_>,
    host: &str,
    mut acked: u64,
    seqs: &[u64],
) -> Result<u64, StoreError> {
    for &s in seqs {
        if s == acked + 1 {
            acked = s;
        } else if s > acked + 1 {
            // A gap inside the batch: nothing later can be contiguous.
            return Ok(acked);
        }
    }
    const PAGE: i64 = 1000;
    loop {
        let rows = sqlx::query(
            "SELECT seq FROM events WHERE host = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(host)
        .bind(codec::i64_of(acked, "sequence")?)
        .bind(PAGE)
        .fetch_all(w.conn())
        .await?;
        let page = rows.len();
        for row in &rows {
            let s = codec::u64_of(row.try_get(0)?, "events.seq")?;
            if s != acked + 1 {
                return Ok(acked);
            }
            acked = s;
        }
        if i64::try_from(page).unwrap_or(0) < PAGE {
            return Ok(acked);
        }
    }
}
