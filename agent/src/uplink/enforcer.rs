//! What the uplink needs from the daemon: announcing itself, installing and revoking grants,
//! installing the server's policy. The daemon implements it; keeping it a trait keeps the
//! uplink free of kernel maps (and testable without them).

use std::{net::IpAddr, time::Duration};

use countersign_api::pb;

/// A grant to write into the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantOrder {
    pub group: String,
    /// Empty: the whole agent group.
    pub session: String,
    /// Operation id ([`agent_common::binding::Binding::id`]).
    pub fingerprint: String,
    /// 1..=8 uses, or 0 for any number until expiry.
    pub uses: u32,
    /// What is left of the grant's lifetime.
    pub ttl: Duration,
    pub grant_id: u64,
}

/// The daemon, as the uplink sees it. Every method may block (map writes, a policy install):
/// the uplink calls them from blocking threads.
pub trait Enforcer: Send + Sync + 'static {
    /// What `Register` announces (version, kernel, mode, groups, policy revision).
    fn registration(&self) -> pb::RegisterRequest;
    /// Writes a grant into the kernel's grant map; returns the scope's cgroup path.
    fn install_grant(&self, order: &GrantOrder) -> anyhow::Result<String>;
    /// Removes every slot of a grant; returns how many there were.
    fn revoke_grant(&self, grant_id: u64) -> anyhow::Result<usize>;
    /// What the kernel counted per agent session (an empty `agent_group` for a session
    /// whose cgroup is gone).
    fn session_counters(&self) -> Vec<pb::SessionCounters>;
    /// Revision of the server policy in force, None when a local file is.
    fn policy_revision(&self) -> Option<String>;
    /// Validates and installs a server policy (atomic swap); on error the policy in force
    /// stays. Returns the compiler's warnings.
    fn install_policy(&self, revision: &str, yaml: &str) -> anyhow::Result<Vec<String>>;
    /// The server resolves to these addresses now: re-install the built-in rule if they
    /// changed.
    fn server_addresses(&self, addrs: Vec<IpAddr>, port: u16);
    /// The server announced these places of the control plane (its listeners, its
    /// database): re-install the built-in rule if they changed.
    fn server_endpoints(&self, endpoints: Vec<pb::Endpoint>);
}
