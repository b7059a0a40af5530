//! `ApprovalService`: people list, read, decide and revoke. Who may decide what is
//! [`crate::decide`]'s business; this module checks input and shapes the answers.

use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status};

use super::check;
use super::convert;
use super::pb::approval_service_server::{ApprovalService, ApprovalServiceServer};
use super::pb::{
    ApprovalRequest, DecideRequest, Decision, GetRequestRequest, ListPendingRequest,
    ListPendingResponse, Revocation, RevokeRequest,
};
use super::Ctx;
use crate::decide;
use crate::people::auth::Audience;
use crate::people::{Authenticator, Caller, Role};
use crate::store::{RequestFilter, RequestState};

/// Server-side `ApprovalService`.
#[derive(Debug, Clone)]
pub struct ApprovalApi {
    ctx: Ctx,
}

/// The service behind its people-only authenticator.
pub fn service(ctx: &Ctx) -> InterceptedService<ApprovalServiceServer<ApprovalApi>, Authenticator> {
    ApprovalServiceServer::with_interceptor(
        ApprovalApi { ctx: ctx.clone() },
        ctx.authenticator(Audience::People, "ApprovalService"),
    )
}

/// Requests scanned per store query while filtering a `ListPending` page.
const SCAN: u32 = 200;

#[tonic::async_trait]
impl ApprovalService for ApprovalApi {
    async fn list_pending(
        &self,
        request: Request<ListPendingRequest>,
    ) -> Result<Response<ListPendingResponse>, Status> {
        let caller = Caller::person(&request)?;
        caller.person.require(Role::Approver)?;
        let ask = request.into_inner();
        let page_size = check::page_size(ask.page_size, 50, 500) as usize;
        if !ask.page_token.is_empty() {
            check::request_id("page_token", &ask.page_token)?;
        }
        let now = crate::store::now();
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let mut filter = RequestFilter {
            state: Some(RequestState::Pending),
            host: opt(&ask.host),
            agent_group: opt(&ask.agent_group),
            limit: SCAN,
            after_id: opt(&ask.page_token),
            ..RequestFilter::default()
        };
        let mut requests = Vec::new();
        let mut next_page_token = String::new();
        // Rows the caller may not decide on are skipped, so a page may need several scans.
        'scan: loop {
            let rows = self.ctx.store.list_requests(&filter).await?;
            let exhausted = rows.len() < SCAN as usize;
            for row in rows {
                filter.after_id = Some(row.id.clone());
                if row.expires_at <= now || !decide::may_decide(&caller.person, &row) {
                    continue;
                }
                let decisions = self.ctx.store.decisions_of(&row.id).await?;
                requests.push(convert::approval_request(&row, &decisions));
                if requests.len() == page_size {
                    next_page_token = row.id;
                    break 'scan;
                }
            }
            if exhausted {
                break;
            }
        }
        Ok(Response::new(ListPendingResponse {
            requests,
            next_page_token,
        }))
    }

    async fn get_request(
        &self,
        request: Request<GetRequestRequest>,
    ) -> Result<Response<ApprovalRequest>, Status> {
        let caller = Caller::person(&request)?;
        // Any role may read a request: approvers decide, admins revoke, auditors review.
        if caller.person.roles.is_empty() {
            return Err(Status::permission_denied(format!(
                "person '{}' has no role on this server (approver, admin or auditor)",
                caller.person.name
            )));
        }
        let id = &request.get_ref().request_id;
        check::request_id("request_id", id)?;
        let row = self
            .ctx
            .store
            .get_request(id)
            .await?
            .ok_or_else(|| Status::not_found(format!("no request {id}")))?;
        let decisions = self.ctx.store.decisions_of(id).await?;
        Ok(Response::new(convert::approval_request(&row, &decisions)))
    }

    async fn decide(&self, request: Request<DecideRequest>) -> Result<Response<Decision>, Status> {
        let caller = Caller::person(&request)?;
        let ask = request.into_inner();
        check::request_id("request_id", &ask.request_id)?;
        let verdict = convert::verdict(ask.verdict.as_ref())?;
        let decided = decide::flow::decide(
            &self.ctx.store,
            &caller.person,
            &caller.channel,
            &ask.request_id,
            |_| verdict,
            crate::store::now(),
        )
        .await?;
        Ok(Response::new(convert::decision(&decided.decision)))
    }

    async fn revoke(
        &self,
        request: Request<RevokeRequest>,
    ) -> Result<Response<Revocation>, Status> {
        let caller = Caller::person(&request)?;
        let ask = request.into_inner();
        check::grant_id("grant_id", &ask.grant_id)?;
        check::text("reason", &ask.reason, true)?;
        let person = &caller.person;
        if !person.has(Role::Admin) {
            person.require(Role::Approver).map_err(|_| {
                Status::permission_denied(format!(
                    "person '{}' is neither an approver nor an admin",
                    person.name
                ))
            })?;
        }
        let grant = self
            .ctx
            .store
            .get_grant(&ask.grant_id)
            .await?
            .ok_or_else(|| Status::not_found(format!("no grant {}", ask.grant_id)))?;
        if !person.has(Role::Admin) {
            let row = self
                .ctx
                .store
                .get_request(&grant.request_id)
                .await?
                .ok_or_else(|| Status::not_found(format!("no request {}", grant.request_id)))?;
            if !person.in_any(&row.spec.approver_groups) {
                return Err(Status::permission_denied(format!(
                    "person '{}' is not in an approver group of rule '{}' (groups: {}) and not an admin",
                    person.name,
                    row.spec.rule,
                    row.spec.approver_groups.join(", ")
                )));
            }
        }
        let revocation = self
            .ctx
            .store
            .revoke(
                &ask.grant_id,
                &person.name,
                ask.reason.trim(),
                crate::store::now(),
            )
            .await?;
        tracing::info!(grant = %ask.grant_id, person = %person.name, "grant revoked");
        Ok(Response::new(revocation))
    }
}
