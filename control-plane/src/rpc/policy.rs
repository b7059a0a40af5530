//! `PolicyService`: validate, put (admins), history and get (auditors and admins).

use policy::{Policy, PolicyErrors, Subject};
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status};

use super::check::{self, invalid};
use super::pb::policy_service_server::{PolicyService, PolicyServiceServer};
use super::pb::{
    GetPolicyRevisionRequest, PolicyDocument, PolicyError, PolicyHistoryRequest,
    PolicyHistoryResponse, PutPolicyRequest, PutPolicyResponse, ValidateRequest, ValidateResponse,
};
use super::Ctx;
use crate::people::auth::{Audience, PersonCaller};
use crate::people::{Authenticator, Caller, Role};
use crate::store::StoreError;

/// Largest policy document accepted (a policy is a few KiB; this bounds parsing work).
pub const MAX_POLICY_BYTES: usize = 1 << 20;
/// Origin of a submitted document in error messages.
const SUBMITTED: &str = "policy";

/// Server-side `PolicyService`.
#[derive(Debug, Clone)]
pub struct PolicyApi {
    ctx: Ctx,
}

/// The service behind its people-only authenticator.
pub fn service(ctx: &Ctx) -> InterceptedService<PolicyServiceServer<PolicyApi>, Authenticator> {
    PolicyServiceServer::with_interceptor(
        PolicyApi { ctx: ctx.clone() },
        ctx.authenticator(Audience::People, "PolicyService"),
    )
}

/// Admins and auditors read policies; everyone else is refused, naming the roles.
pub(super) fn reader(caller: &PersonCaller) -> Result<(), Status> {
    let p = &caller.person;
    if p.has(Role::Admin) || p.has(Role::Auditor) {
        Ok(())
    } else {
        Err(Status::permission_denied(format!(
            "person '{}' is neither an auditor nor an admin",
            p.name
        )))
    }
}

/// Parses a submitted document: `Ok(Err(errors))` when it is not a valid policy.
fn parse(yaml: &str) -> Result<Result<Policy, PolicyErrors>, Status> {
    if yaml.len() > MAX_POLICY_BYTES {
        return Err(invalid(format!(
            "yaml is {} bytes; at most {MAX_POLICY_BYTES}",
            yaml.len()
        )));
    }
    Ok(Policy::parse_str(SUBMITTED, yaml))
}

/// The errors as the API returns them: line, rule id, message (agent groups named in it).
fn errors_of(errors: &PolicyErrors) -> Vec<PolicyError> {
    errors
        .iter()
        .map(|e| PolicyError {
            line: e.line.and_then(|l| u32::try_from(l).ok()).unwrap_or(0),
            rule: match &e.subject {
                Some(Subject::Rule(id)) => id.clone(),
                _ => String::new(),
            },
            message: match &e.subject {
                Some(Subject::Agent(name)) => format!("agent '{name}': {}", e.message),
                _ => e.message.clone(),
            },
        })
        .collect()
}

#[tonic::async_trait]
impl PolicyService for PolicyApi {
    async fn validate(
        &self,
        request: Request<ValidateRequest>,
    ) -> Result<Response<ValidateResponse>, Status> {
        let caller = Caller::person(&request)?;
        reader(&caller)?;
        let errors = match parse(&request.get_ref().yaml)? {
            Ok(_) => Vec::new(),
            Err(e) => errors_of(&e),
        };
        Ok(Response::new(ValidateResponse { errors }))
    }

    async fn put(
        &self,
        request: Request<PutPolicyRequest>,
    ) -> Result<Response<PutPolicyResponse>, Status> {
        let caller = Caller::person(&request)?;
        caller.person.require(Role::Admin)?;
        let ask = request.into_inner();
        check::text("comment", &ask.comment, false)?;
        if let Err(errors) = parse(&ask.yaml)? {
            // Every error, one per line, as `policy check` prints them.
            return Err(invalid(format!(
                "the policy is not valid ({} error{}):\n{errors}",
                errors.len(),
                if errors.len() == 1 { "" } else { "s" }
            )));
        }
        let row = self
            .ctx
            .store
            .put_policy(
                &ask.yaml,
                &caller.person.name,
                ask.comment.trim(),
                ask.base_revision.trim(),
                crate::store::now(),
            )
            .await
            .map_err(|e| match e {
                // Optimistic concurrency lost: somebody put a revision after the author's base.
                StoreError::Conflict(m) => {
                    Status::failed_precondition(match ask.base_revision.trim() {
                        "" => format!(
                            "policy changed since you read it (no base revision given): {m}"
                        ),
                        base => format!("policy changed since revision {base}: {m}"),
                    })
                }
                other => other.into(),
            })?;
        tracing::info!(revision = %row.revision, author = %row.author, "policy put");
        Ok(Response::new(PutPolicyResponse {
            revision: row.revision,
        }))
    }

    async fn history(
        &self,
        request: Request<PolicyHistoryRequest>,
    ) -> Result<Response<PolicyHistoryResponse>, Status> {
        let caller = Caller::person(&request)?;
        reader(&caller)?;
        let ask = request.into_inner();
        let size = check::page_size(ask.page_size, 20, 200);
        let before = (!ask.page_token.is_empty()).then_some(ask.page_token.as_str());
        if let Some(b) = before {
            check::text("page_token", b, false)?;
        }
        // One more than asked tells whether there is a next page.
        let mut rows = self
            .ctx
            .store
            .policy_history(size.saturating_add(1), before)
            .await?;
        let more = rows.len() > size as usize;
        rows.truncate(size as usize);
        let next_page_token = if more {
            rows.last().map(|r| r.revision.clone()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(PolicyHistoryResponse {
            revisions: rows.iter().map(|r| r.to_pb(false)).collect(),
            next_page_token,
        }))
    }

    async fn get(
        &self,
        request: Request<GetPolicyRevisionRequest>,
    ) -> Result<Response<PolicyDocument>, Status> {
        let caller = Caller::person(&request)?;
        reader(&caller)?;
        let revision = request.get_ref().revision.trim();
        let row = if revision.is_empty() {
            self.ctx
                .store
                .current_policy()
                .await?
                .ok_or_else(|| Status::not_found("the server holds no policy yet"))?
        } else {
            check::text("revision", revision, false)?;
            self.ctx.store.get_policy(revision).await?.ok_or_else(|| {
                Status::not_found(format!("no policy revision {:?}", check::shorten(revision)))
            })?
        };
        Ok(Response::new(row.to_pb(true)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_carry_line_and_rule() {
        let yaml = "version: 1\nagents:\n  - name: ai\n    cgroup: relative\nrules:\n  - id: r\n    exec: { binary: /x }\n    action: block\n";
        let Ok(Err(e)) = parse(yaml) else {
            panic!("should be invalid")
        };
        let errors = errors_of(&e);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0].line, 4);
        assert_eq!(errors[0].rule, "");
        assert!(errors[0].message.starts_with("agent 'ai': "), "{errors:?}");
        assert_eq!(errors[1].line, 8);
        assert_eq!(errors[1].rule, "r");
        assert!(
            errors[1].message.starts_with("unknown action 'block'"),
            "{errors:?}"
        );
        assert!(parse(&"#".repeat(MAX_POLICY_BYTES + 1)).is_err());
    }
}
