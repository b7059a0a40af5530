//! `AgentService`: what host daemons call. The host is always the one named by the client
//! certificate, never a message field.

use std::time::Duration;

use prost::Message as _;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status};

use super::check::{self, invalid};
use super::events::{ingest_batch, operation};
use super::pb::agent_service_server::{AgentService, AgentServiceServer};
use super::pb::{
    DecisionEvent, DecisionsRequest, ForwardRequestRequest, ForwardRequestResponse,
    GetPolicyRequest, GetPolicyResponse, RegisterRequest, RegisterResponse, ReportSessionsRequest,
    ReportSessionsResponse, UploadEventsRequest, UploadEventsResponse,
};
use super::spec::spec_for;
use super::Ctx;
use crate::people::auth::Audience;
use crate::people::{Authenticator, Caller};
use crate::store::Store;

/// Decision events read per query while streaming.
const DECISIONS_PAGE: u32 = 500;
/// How often a stream re-reads the store even without a wake-up: decisions written by
/// other replicas (PostgreSQL) are not announced to this process.
const POLL: Duration = Duration::from_secs(1);

/// Server-side `AgentService`.
#[derive(Debug, Clone)]
pub struct AgentApi {
    ctx: Ctx,
}

/// The service behind its host-only authenticator.
pub fn service(ctx: &Ctx) -> InterceptedService<AgentServiceServer<AgentApi>, Authenticator> {
    AgentServiceServer::with_interceptor(
        AgentApi { ctx: ctx.clone() },
        ctx.authenticator(Audience::Hosts, "AgentService"),
    )
}

#[tonic::async_trait]
impl AgentService for AgentApi {
    async fn register(
        &self,
        request: Request<RegisterRequest>,
    ) -> Result<Response<RegisterResponse>, Status> {
        let host = Caller::host(&request)?;
        let hello = request.get_ref();
        for (field, value) in [
            ("agent_version", &hello.agent_version),
            ("kernel", &hello.kernel),
            ("policy_revision", &hello.policy_revision),
        ] {
            check::text(field, value, false)?;
        }
        let now = crate::store::now();
        let last = self.ctx.store.register_host(&host, hello, now).await?;
        tracing::info!(
            host = %host,
            version = %hello.agent_version,
            kernel = %hello.kernel,
            mode = hello.mode,
            groups = ?hello.agent_groups,
            last_acked = last,
            "daemon registered"
        );
        Ok(Response::new(RegisterResponse {
            host,
            last_acked_sequence: last,
            server_time: Some(now.into()),
            endpoints: self.ctx.endpoints.to_vec(),
        }))
    }

    async fn upload_events(
        &self,
        request: Request<UploadEventsRequest>,
    ) -> Result<Response<UploadEventsResponse>, Status> {
        let host = Caller::host(&request)?;
        let events = request.into_inner().events;
        let policy = self.ctx.policy.current(&self.ctx.store).await?;
        let batch = ingest_batch(
            events,
            policy.as_deref(),
            &self.ctx.people.default_approvers,
        )?;
        let count = batch.len();
        let outcome = self
            .ctx
            .store
            .ingest(&host, batch, crate::store::now())
            .await?;
        tracing::debug!(host = %host, received = count, stored = outcome.stored, acked = outcome.acked, opened = outcome.opened.len(), "events uploaded");
        for r in &outcome.opened {
            tracing::info!(host = %host, request = %r.id, rule = %r.spec.rule, agent = %r.agent_group, session = %r.session, "approval request opened");
        }
        Ok(Response::new(UploadEventsResponse {
            acked_sequence: outcome.acked,
        }))
    }

    async fn forward_request(
        &self,
        request: Request<ForwardRequestRequest>,
    ) -> Result<Response<ForwardRequestResponse>, Status> {
        let host = Caller::host(&request)?;
        let ask = request.into_inner();
        operation("operation", ask.operation.as_ref(), true)?;
        let op = ask
            .operation
            .as_ref()
            .ok_or_else(|| invalid("operation is required"))?;
        check::encoded_size("operation", op.encoded_len())?;
        check::text("rule", &ask.rule, false)?;
        check::text("reason", &ask.reason, false)?;
        countersign_api::binding::verify(op).map_err(|e| {
            Status::failed_precondition(format!("this operation cannot be approved: {e}"))
        })?;
        let policy = self.ctx.policy.current(&self.ctx.store).await?;
        let spec = spec_for(
            policy.as_deref(),
            &ask.rule,
            &self.ctx.people.default_approvers,
        );
        let row = self
            .ctx
            .store
            .forward(&host, op, &spec, ask.reason.trim(), crate::store::now())
            .await?;
        tracing::info!(host = %host, request = %row.id, rule = %row.spec.rule, "request forwarded");
        Ok(Response::new(ForwardRequestResponse {
            request_id: row.id,
            expires_at: Some(row.expires_at.into()),
        }))
    }

    type DecisionsStream = ReceiverStream<Result<DecisionEvent, Status>>;

    async fn decisions(
        &self,
        request: Request<DecisionsRequest>,
    ) -> Result<Response<Self::DecisionsStream>, Status> {
        let host = Caller::host(&request)?;
        let cursor = request.get_ref().cursor.trim();
        let after = if cursor.is_empty() {
            0
        } else {
            cursor.parse::<u64>().map_err(|_| {
                invalid(format!(
                    "cursor {:?} is not a cursor of this server (a decimal number from a DecisionEvent)",
                    check::shorten(cursor)
                ))
            })?
        };
        // Subscribe before the first read, so that nothing written in between is missed.
        let wake = self.ctx.store.subscribe();
        // Read the first page now so that a broken store fails the call, not the stream.
        let first = self
            .ctx
            .store
            .decision_events(&host, after, DECISIONS_PAGE)
            .await?;
        let (tx, rx) = mpsc::channel(64);
        tracing::info!(host = %host, after, "decision stream opened");
        tokio::spawn(follow(
            self.ctx.store.clone(),
            host,
            after,
            first,
            wake,
            self.ctx.stopping.clone(),
            tx,
        ));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn get_policy(
        &self,
        request: Request<GetPolicyRequest>,
    ) -> Result<Response<GetPolicyResponse>, Status> {
        Caller::host(&request)?;
        let known = &request.get_ref().known_revision;
        let policy = match self.ctx.store.current_policy().await? {
            Some(row) if row.revision != *known => Some(row.to_pb(true)),
            _ => None,
        };
        Ok(Response::new(GetPolicyResponse { policy }))
    }

    async fn report_sessions(
        &self,
        request: Request<ReportSessionsRequest>,
    ) -> Result<Response<ReportSessionsResponse>, Status> {
        let host = Caller::host(&request)?;
        let sessions = request.into_inner().sessions;
        super::sessions::check(&sessions)?;
        let missing = self
            .ctx
            .store
            .report_sessions(&host, &sessions, crate::store::now())
            .await?;
        for m in &missing {
            tracing::warn!(host = %host, agent = %m.agent_group, session = %m.session, lost = m.events_lost, limited = m.events_limited, "the kernel could not send every event of a session");
        }
        Ok(Response::new(ReportSessionsResponse {}))
    }
}

/// Feeds one host's decision stream: `first`, then whatever the store holds after it,
/// woken by this process's writes and a poll for other replicas'; ends when the client
/// goes away, when the server shuts down (the daemon reconnects, to this server or
/// another replica), or on a store error (sent to the client).
async fn follow(
    store: Store,
    host: String,
    mut after: u64,
    first: Vec<DecisionEvent>,
    mut wake: broadcast::Receiver<String>,
    mut stopping: watch::Receiver<bool>,
    tx: mpsc::Sender<Result<DecisionEvent, Status>>,
) {
    let mut page = first;
    loop {
        let full = page.len() >= DECISIONS_PAGE as usize;
        for event in page {
            match event.cursor.parse::<u64>() {
                Ok(c) => after = after.max(c),
                Err(_) => {
                    tracing::warn!(host = %host, cursor = %event.cursor, "store returned a decision event without a numeric cursor")
                }
            }
            if tx.send(Ok(event)).await.is_err() {
                tracing::info!(host = %host, "decision stream closed by the daemon");
                return;
            }
        }
        if *stopping.borrow() {
            tracing::info!(host = %host, "decision stream ended: server shutting down");
            return;
        }
        if !full {
            tokio::select! {
                _ = tx.closed() => {
                    tracing::info!(host = %host, "decision stream closed by the daemon");
                    return;
                }
                _ = stopping.changed() => {
                    tracing::info!(host = %host, "decision stream ended: server shutting down");
                    return;
                }
                _ = wait_for(&mut wake, &host) => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
        page = match store.decision_events(&host, after, DECISIONS_PAGE).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(host = %host, error = %e, "decision stream: store error");
                let _ = tx.send(Err(e.into())).await;
                return;
            }
        };
    }
}

/// Returns when the store announces decision events for `host` (or lost track: a lagged
/// receiver re-reads to be safe). Never returns once the store is gone (the poll and the
/// client's departure still end the wait).
async fn wait_for(wake: &mut broadcast::Receiver<String>, host: &str) {
    loop {
        match wake.recv().await {
            Ok(h) if h == host => return,
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => return,
            Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
        }
    }
}
