//! Following the server's policy: `GetPolicy` at connect and every 10 s; a new revision is
//! installed like a reload (atomic generation swap) and becomes the daemon's policy source.
//! A revision that fails to install is logged once and not retried until the server has
//! another one.

use std::{sync::Arc, time::Duration};

use countersign_api::pb::{self, agent_service_client::AgentServiceClient};
use tonic::transport::Channel;

use super::{enforcer::Enforcer, error::LinkError, Link};

/// How often the server is asked for a newer policy.
pub const INTERVAL: Duration = Duration::from_secs(10);
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// Polls until the link fails.
pub async fn run(
    link: &Arc<Link>,
    enforcer: &Arc<dyn Enforcer>,
    mut client: AgentServiceClient<Channel>,
) -> Result<(), LinkError> {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // The first tick is immediate: at connect.
        tick.tick().await;
        let known = enforcer.policy_revision().unwrap_or_default();
        let call = client.get_policy(pb::GetPolicyRequest {
            known_revision: known.clone(),
        });
        let doc = tokio::time::timeout(CALL_TIMEOUT, call)
            .await
            .map_err(|_| LinkError::Timeout("GetPolicy"))?
            .map_err(|s| LinkError::rpc("GetPolicy", s))?
            .into_inner()
            .policy;
        let Some(doc) = doc else { continue };
        if doc.revision.is_empty() || doc.revision == known {
            continue;
        }
        if link.policy_refused(&doc.revision) {
            continue;
        }
        let (e, revision, yaml) = (enforcer.clone(), doc.revision.clone(), doc.yaml);
        let result = tokio::task::spawn_blocking(move || e.install_policy(&revision, &yaml)).await;
        match result {
            Ok(Ok(warnings)) => {
                tracing::info!(revision = %doc.revision, author = %doc.author, comment = %doc.comment, "installed the control plane's policy");
                for w in warnings {
                    tracing::warn!(revision = %doc.revision, warning = %w, "policy");
                }
            }
            Ok(Err(e)) => {
                link.refuse_policy(&doc.revision);
                tracing::error!(revision = %doc.revision, author = %doc.author, error = %format!("{e:#}"), "the control plane's policy was refused; the policy in force stays");
            }
            Err(e) => tracing::error!(error = %e, "installing the control plane's policy"),
        }
    }
}
