//! `AuditService`: query, export and verify the audit trail (auditors only).

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status};

use super::check::{self, invalid};
use super::convert::{self, AuditSelection};
use super::pb::audit_service_server::{AuditService, AuditServiceServer};
use super::pb::{
    AuditQueryRequest, AuditQueryResponse, ExportChunk, ExportFormat, ExportRequest, VerifyRequest,
    VerifyResponse,
};
use super::Ctx;
use crate::audit::export::{csv, jsonl, ocsf};
use crate::audit::{self, Filter, Kind, Record, Timestamp};
use crate::people::auth::Audience;
use crate::people::{Authenticator, Caller, Role};
use crate::store::{AuditError, Store, StoreError};

/// Records read per store query.
const BATCH: u32 = 1000;

/// Server-side `AuditService`.
#[derive(Debug, Clone)]
pub struct AuditApi {
    ctx: Ctx,
}

/// The service behind its people-only authenticator.
pub fn service(ctx: &Ctx) -> InterceptedService<AuditServiceServer<AuditApi>, Authenticator> {
    AuditServiceServer::with_interceptor(
        AuditApi { ctx: ctx.clone() },
        ctx.authenticator(Audience::People, "AuditService"),
    )
}

fn auditor<T>(request: &Request<T>) -> Result<(), Status> {
    Caller::person(request)?.person.require(Role::Auditor)
}

#[tonic::async_trait]
impl AuditService for AuditApi {
    async fn query(
        &self,
        request: Request<AuditQueryRequest>,
    ) -> Result<Response<AuditQueryResponse>, Status> {
        auditor(&request)?;
        let ask = request.into_inner();
        let selection = convert::audit_filter(ask.filter.as_ref())?;
        let size = check::page_size(ask.page_size, 100, 1000) as usize;
        let mut after = if ask.page_token.is_empty() {
            None
        } else {
            Some(ask.page_token.parse::<u64>().map_err(|_| {
                invalid(
                    "page_token is not a page token of this server (next_page_token of a query)",
                )
            })?)
        };
        let mut records = Vec::new();
        let mut next_page_token = String::new();
        'scan: loop {
            let batch = self.ctx.store.audit_records(after, BATCH).await?;
            let exhausted = batch.len() < BATCH as usize;
            for record in &batch {
                after = Some(record.seq);
                if selection.matches(record) {
                    records.push(convert::audit_record(record)?);
                    if records.len() == size {
                        next_page_token = record.seq.to_string();
                        break 'scan;
                    }
                }
            }
            if exhausted {
                break;
            }
        }
        Ok(Response::new(AuditQueryResponse {
            records,
            next_page_token,
        }))
    }

    type ExportStream = ReceiverStream<Result<ExportChunk, Status>>;

    async fn export(
        &self,
        request: Request<ExportRequest>,
    ) -> Result<Response<Self::ExportStream>, Status> {
        auditor(&request)?;
        let ask = request.into_inner();
        let selection = convert::audit_filter(ask.filter.as_ref())?;
        let format = match ExportFormat::try_from(ask.format) {
            Ok(ExportFormat::Jsonl) => Format::Jsonl,
            Ok(ExportFormat::Csv) => Format::Csv,
            Ok(ExportFormat::Ocsf) => Format::Ocsf,
            Ok(ExportFormat::Unspecified) | Err(_) => {
                return Err(invalid("format is required: JSONL, CSV or OCSF"))
            }
        };
        let start = crate::store::now();
        let mut end_at_checkpoint = None;
        if format == Format::Jsonl {
            // A checkpoint over the head right now, so that the export ends with a signature
            // and nothing can be cut off its end unnoticed.
            match self.ctx.store.audit_checkpoint(start).await {
                Ok(()) => end_at_checkpoint = Some(Timestamp::from_system_time(start)),
                Err(StoreError::Audit(AuditError::Chain(audit::ChainError::Empty))) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let (tx, rx) = mpsc::channel(8);
        tokio::spawn(stream_export(
            self.ctx.store.clone(),
            format,
            selection,
            end_at_checkpoint,
            tx,
        ));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn verify(
        &self,
        request: Request<VerifyRequest>,
    ) -> Result<Response<VerifyResponse>, Status> {
        auditor(&request)?;
        match self.ctx.store.audit_verify().await {
            Ok(summary) => Ok(Response::new(VerifyResponse {
                ok: true,
                records_checked: summary.records,
                checkpoints_checked: summary.checkpoints,
                problem: String::new(),
                first_bad_seq: 0,
            })),
            Err(StoreError::Audit(AuditError::Verify(e))) => {
                tracing::error!(error = %e, "the stored audit trail does not verify");
                Ok(Response::new(VerifyResponse {
                    ok: false,
                    records_checked: 0,
                    checkpoints_checked: 0,
                    problem: e.to_string(),
                    first_bad_seq: e.seq().unwrap_or(0),
                }))
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// Largest `ExportChunk` sent (the bytes of a batch are split; clients concatenate them).
const MAX_CHUNK: usize = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Jsonl,
    Csv,
    Ocsf,
}

/// Streams the selected records in `format`, one chunk per store batch. With
/// `end_at_checkpoint`, the export stops after the first checkpoint written at or after that
/// time (the one written for this export, or a later periodic one), so it ends signed even
/// while records keep being appended.
async fn stream_export(
    store: Store,
    format: Format,
    selection: AuditSelection,
    end_at_checkpoint: Option<Timestamp>,
    tx: mpsc::Sender<Result<ExportChunk, Status>>,
) {
    let mut csv_header = format == Format::Csv;
    let mut after = None;
    loop {
        let batch = match store.audit_records(after, BATCH).await {
            Ok(b) => b,
            Err(e) => {
                let _ = tx.send(Err(e.into())).await;
                return;
            }
        };
        let stop_at = end_at_checkpoint.and_then(|since| {
            batch
                .iter()
                .position(|r| r.kind == Kind::Checkpoint && r.time >= since)
        });
        let (slice, done) = match stop_at {
            Some(i) => (&batch[..=i], true),
            None => (&batch[..], batch.len() < BATCH as usize),
        };
        after = batch.last().map(|r| r.seq);
        let selected: Vec<&Record> = slice.iter().filter(|r| selection.matches(r)).collect();
        let data = match encode(format, &selected, std::mem::take(&mut csv_header)) {
            Ok(d) => d,
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        };
        // In pieces a client decodes under gRPC's default 4 MiB message limit, whatever the
        // records hold (a record stored before the size bound may be large).
        for piece in data.chunks(MAX_CHUNK) {
            let chunk = ExportChunk {
                data: piece.to_vec(),
            };
            if tx.send(Ok(chunk)).await.is_err() {
                return;
            }
        }
        if done {
            return;
        }
    }
}

/// The bytes of `records` in `format`; `csv_header`: start with the CSV header row (the
/// first chunk of a CSV export).
fn encode(format: Format, records: &[&Record], csv_header: bool) -> Result<Vec<u8>, Status> {
    let all = Filter::default();
    let failed = |e: &dyn std::fmt::Display| Status::internal(format!("export: {e}"));
    let mut out = Vec::new();
    match format {
        Format::Jsonl => {
            jsonl::write(records.iter().copied(), &all, &mut out).map_err(|e| failed(&e))?;
        }
        Format::Ocsf => {
            ocsf::write(records.iter().copied(), &all, &mut out).map_err(|e| failed(&e))?;
        }
        Format::Csv => {
            out = csv::write_rows(records.iter().copied(), csv_header, out)
                .map_err(|e| failed(&e))?
                .1;
        }
    }
    Ok(out)
}
