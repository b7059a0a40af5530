//! `AgentService`: what host daemons call. Only `Register` exists so far.

use std::time::SystemTime;

use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status};

use super::pb::agent_service_server::{AgentService, AgentServiceServer};
use super::pb::{
    DecisionEvent, DecisionsRequest, ForwardRequestRequest, ForwardRequestResponse,
    GetPolicyRequest, GetPolicyResponse, RegisterRequest, RegisterResponse, UploadEventsRequest,
    UploadEventsResponse,
};
use crate::tls::identity::{authenticate, require_role, Role};

/// Server-side `AgentService` (stateless for now: nothing is stored yet).
#[derive(Debug, Default, Clone)]
pub struct AgentApi;

/// Signature of [`authenticate`], the interceptor in front of every method.
pub type Authenticator = fn(Request<()>) -> Result<Request<()>, Status>;

/// The service ready to add to a tonic server: every call first goes through
/// [`authenticate`], so handlers always see a [`crate::tls::identity::PeerIdentity`].
pub fn service(api: AgentApi) -> InterceptedService<AgentServiceServer<AgentApi>, Authenticator> {
    AgentServiceServer::with_interceptor(api, authenticate)
}

fn not_yet(method: &str) -> Status {
    Status::unimplemented(format!("AgentService.{method} is not implemented yet"))
}

#[tonic::async_trait]
impl AgentService for AgentApi {
    async fn register(
        &self,
        request: Request<RegisterRequest>,
    ) -> Result<Response<RegisterResponse>, Status> {
        // The host name comes from the certificate only: a daemon cannot speak for another host.
        let host = require_role(&request, Role::Host)?;
        let hello = request.get_ref();
        tracing::info!(
            host = %host.name,
            version = %hello.agent_version,
            kernel = %hello.kernel,
            mode = hello.mode,
            groups = ?hello.agent_groups,
            "daemon registered"
        );
        Ok(Response::new(RegisterResponse {
            host: host.name,
            // No event store yet: the daemon uploads from the start.
            last_acked_sequence: 0,
            server_time: Some(SystemTime::now().into()),
        }))
    }

    async fn upload_events(
        &self,
        request: Request<UploadEventsRequest>,
    ) -> Result<Response<UploadEventsResponse>, Status> {
        require_role(&request, Role::Host)?;
        Err(not_yet("UploadEvents"))
    }

    async fn forward_request(
        &self,
        request: Request<ForwardRequestRequest>,
    ) -> Result<Response<ForwardRequestResponse>, Status> {
        require_role(&request, Role::Host)?;
        Err(not_yet("ForwardRequest"))
    }

    type DecisionsStream = tonic::codegen::BoxStream<DecisionEvent>;

    async fn decisions(
        &self,
        request: Request<DecisionsRequest>,
    ) -> Result<Response<Self::DecisionsStream>, Status> {
        require_role(&request, Role::Host)?;
        Err(not_yet("Decisions"))
    }

    async fn get_policy(
        &self,
        request: Request<GetPolicyRequest>,
    ) -> Result<Response<GetPolicyResponse>, Status> {
        require_role(&request, Role::Host)?;
        Err(not_yet("GetPolicy"))
    }
}
