//! How a new request is decided: the approvers of its rule in the server's current policy,
//! or the server's defaults when the policy does not know the rule.

use std::sync::Arc;
use std::time::Duration;

use policy::{Approvers, GrantSpec, Policy};
use tokio::sync::Mutex;

use crate::store::{RequestSpec, Store, StoreError};

/// Origin of stored policies in parse errors.
pub const STORED: &str = "stored policy";

/// Spec of a request raised by `rule` (empty: the agent group's default action) under
/// `policy`. A rule the policy does not know (or without `approvers`) gets
/// `default_approvers`, one approval, expiry 1h, grants of 1 use / 10m.
pub fn spec_for(policy: Option<&Policy>, rule: &str, default_approvers: &[String]) -> RequestSpec {
    let found = policy.and_then(|p| p.rules.iter().find(|r| !rule.is_empty() && r.id == rule));
    let default_grant = GrantSpec::default();
    let mut spec = RequestSpec {
        rule: rule.to_owned(),
        rule_description: String::new(),
        approver_groups: default_approvers.to_vec(),
        approvals_required: 1,
        expires_in: Approvers::DEFAULT_EXPIRES,
        max_grant_ttl: default_grant.ttl,
        max_grant_uses: default_grant.uses,
        allow_launcher: false,
    };
    if let Some(r) = found {
        spec.rule_description = r.description.clone().unwrap_or_default();
        if let Some(a) = &r.approvers {
            spec.approver_groups = a.groups.clone();
            spec.approvals_required = a.min;
            spec.expires_in = a.expires;
            spec.max_grant_ttl = a.grant.ttl;
            spec.max_grant_uses = a.grant.uses;
            spec.allow_launcher = a.allow_launcher;
        }
    }
    spec
}

/// The server's current policy, parsed once per revision. Other replicas may put a new
/// revision at any time, so the revision is read from the store on every use (one small
/// query) and the text parsed again only when it changed.
#[derive(Debug, Default)]
pub struct PolicyCache {
    parsed: Mutex<Option<(String, Option<Arc<Policy>>)>>,
}

impl PolicyCache {
    /// The current policy (None when the store holds none, or it no longer parses).
    pub async fn current(&self, store: &Store) -> Result<Option<Arc<Policy>>, StoreError> {
        let Some(row) = store.current_policy().await? else {
            return Ok(None);
        };
        let mut parsed = self.parsed.lock().await;
        if let Some((revision, policy)) = parsed.as_ref() {
            if *revision == row.revision {
                return Ok(policy.clone());
            }
        }
        let policy = match Policy::parse_str(STORED, &row.yaml) {
            Ok(p) => Some(Arc::new(p)),
            Err(e) => {
                // Put validates, so this only happens after a format change: requests then
                // get the default approvers rather than failing the upload.
                tracing::warn!(revision = %row.revision, errors = %e, "the stored policy does not parse; using default approvers");
                None
            }
        };
        *parsed = Some((row.revision, policy.clone()));
        Ok(policy)
    }
}

/// The default lifetime of a request's grant (for docs and tests).
pub const DEFAULT_GRANT_TTL: Duration = Duration::from_secs(600);

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = "version: 1\nagents:\n  - name: ai\n    cgroup: /agents/ai\nrules:\n  - id: kubectl\n    description: cluster changes\n    exec: { binary: /usr/bin/kubectl }\n    action: approve\n    approvers: { groups: [sre], min: 2, grant: { uses: 3, ttl: 30m }, expires: 15m, allow_launcher: true }\n  - id: plain\n    exec: { binary: /usr/bin/rm }\n    action: approve\n";

    #[test]
    fn rule_specs_and_defaults() {
        let p = Policy::parse_str("p.yaml", POLICY).expect("valid");
        let defaults = vec!["security".to_owned()];
        let s = spec_for(Some(&p), "kubectl", &defaults);
        assert_eq!(s.approver_groups, ["sre"]);
        assert_eq!(s.rule_description, "cluster changes");
        assert_eq!((s.approvals_required, s.max_grant_uses), (2, 3));
        assert_eq!(s.max_grant_ttl, Duration::from_secs(1800));
        assert_eq!(s.expires_in, Duration::from_secs(900));
        assert!(s.allow_launcher);
        for (policy, rule) in [
            (Some(&p), "plain"),
            (Some(&p), "gone"),
            (None, "kubectl"),
            (Some(&p), ""),
        ] {
            let s = spec_for(policy, rule, &defaults);
            assert_eq!(s.rule, rule);
            assert_eq!(s.approver_groups, ["security"]);
            assert_eq!((s.approvals_required, s.max_grant_uses), (1, 1));
            assert_eq!(s.max_grant_ttl, DEFAULT_GRANT_TTL);
            assert_eq!(s.expires_in, Duration::from_secs(3600));
            assert!(!s.allow_launcher);
        }
    }
}
