//! The daemon as the uplink's [`Enforcer`]: registration facts, grants into the kernel map,
//! the server's policy, the control plane's addresses.

use std::net::IpAddr;

use anyhow::{anyhow, Result};
use countersign_api::pb;

use super::{builtin::ControlPlaneRule, Daemon};
use crate::{
    grants::{self, NewGrant},
    session::scope_cgroup,
    uplink::{Enforcer, GrantOrder},
};

impl Enforcer for Daemon {
    fn registration(&self) -> pb::RegisterRequest {
        let groups = {
            let g = self.generations.read().unwrap_or_else(|p| p.into_inner());
            g.current()
                .map(|n| n.groups.iter().map(|x| x.name.clone()).collect())
                .unwrap_or_default()
        };
        pb::RegisterRequest {
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            kernel: self.kernel.clone(),
            mode: pb::EnforcementMode::from(self.attached.mode) as i32,
            agent_groups: groups,
            policy_revision: self.server_revision().unwrap_or_default(),
            previous_outage: self.outage.as_ref().map(|o| pb::Outage {
                pid: o.pid,
                since: humantime::parse_rfc3339(&o.since).ok().map(Into::into),
                seconds: o.seconds,
                clean: o.clean,
                events_lost: o.events_lost,
            }),
        }
    }

    fn install_grant(&self, order: &GrantOrder) -> Result<String> {
        let group = self.group_cgroup_of(&order.group).ok_or_else(|| {
            anyhow!(
                "agent group {:?} is not in the policy in force",
                order.group
            )
        })?;
        if !order.session.is_empty() {
            crate::session::launch::validate_session(&order.session)?;
        }
        let scope_rel = scope_cgroup(&group, &order.session);
        let scope = self
            .hierarchy
            .open(&scope_rel)
            .map_err(|e| anyhow!("the session's cgroup is gone ({e})"))?
            .id;
        let binding = self.binding(&order.fingerprint)?;
        let g = NewGrant {
            scope,
            binding,
            uses: order.uses,
            ttl: order.ttl,
            grant_id: order.grant_id,
        };
        let mut maps = self.maps.lock().unwrap_or_else(|p| p.into_inner());
        grants::install(&mut maps, &g)?;
        Ok(scope_rel)
    }

    fn revoke_grant(&self, grant_id: u64) -> Result<usize> {
        let mut maps = self.maps.lock().unwrap_or_else(|p| p.into_inner());
        Ok(grants::revoke(&mut maps, grant_id)?)
    }

    fn policy_revision(&self) -> Option<String> {
        self.server_revision()
    }

    fn session_counters(&self) -> Vec<pb::SessionCounters> {
        let counts = self
            .maps
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .session_evidence();
        let g = self.generations.read().unwrap_or_else(|p| p.into_inner());
        let groups = g.current().map(|n| n.groups.as_slice()).unwrap_or_default();
        super::evidence::named(&self.hierarchy, groups, counts)
            .into_iter()
            .map(|n| {
                let (agent_group, session) = n.names.unwrap_or_default();
                pb::SessionCounters {
                    agent_group,
                    session,
                    cgroup_id: n.cgroup_id,
                    refused: n.stats.refused,
                    granted: n.stats.granted,
                    events_lost: n.stats.events_lost,
                    events_limited: n.stats.events_limited,
                }
            })
            .collect()
    }

    fn install_policy(&self, revision: &str, yaml: &str) -> Result<Vec<String>> {
        self.install_server(revision, yaml)
    }

    fn server_addresses(&self, addrs: Vec<IpAddr>, port: u16) {
        self.update_control_plane("addresses", |r| {
            let changed = r.addrs != addrs || r.port != port;
            r.addrs = addrs;
            r.port = port;
            changed
        });
    }

    fn server_endpoints(&self, endpoints: Vec<pb::Endpoint>) {
        let endpoints = super::builtin::announced(&endpoints);
        self.update_control_plane("endpoints", |r| {
            let changed = r.endpoints != endpoints;
            r.endpoints = endpoints;
            changed
        });
    }
}

impl Daemon {
    /// Applies `change` to the built-in rule's view of the control plane (`what` names the
    /// part, for the log); re-installs the policy when it says something changed.
    fn update_control_plane(&self, what: &str, change: impl FnOnce(&mut ControlPlaneRule) -> bool) {
        let Some(rule) = &self.control_plane else {
            return;
        };
        {
            let mut r = rule.lock().unwrap_or_else(|p| p.into_inner());
            if !change(&mut r) {
                return;
            }
            tracing::info!(addresses = ?r.addrs, port = r.port, endpoints = ?r.endpoints, rule = super::builtin::RULE_ID, "the control plane's {what} changed; re-installing the policy");
        }
        if let Err(e) = self.reinstall() {
            tracing::error!(error = %format!("{e:#}"), "re-installing the policy with the control plane's new {what}");
        }
    }
}
