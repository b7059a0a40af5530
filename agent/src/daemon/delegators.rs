//! The delegators no session may connect to (LSM mode): services that run work for whoever
//! connects to their unix socket, outside the caller's cgroup and so outside every rule.
//! Written into the pinned `DELEGATORS` map at start, before the guards attach
//! (docs/operations.md, "Running agents safely").

use agent_common::tamper::delegator;

use crate::ebpf::DelegatorKey;

/// Names as the services bind them (both spellings where `/var/run` is a symlink to `/run`:
/// the kernel keeps the name the listener gave). An entry ending with `/` is a directory:
/// every socket bound below it; one ending with `*`, every name that starts with the rest.
pub const BUILT_IN: &[&str] = &[
    // Container engines: `docker run -v /:/host --privileged` is root on the host.
    "/run/docker.sock",
    "/var/run/docker.sock",
    "/run/containerd/",
    "/var/run/containerd/",
    "/run/podman/",
    "/var/run/podman/",
    "/run/crio/",
    "/var/run/crio/",
    // The system manager (`systemctl`, `systemd-run` as root) and the system bus, through
    // which it also starts units.
    "/run/systemd/private",
    "/var/run/systemd/private",
    "/run/dbus/system_bus_socket",
    "/var/run/dbus/system_bus_socket",
    // Every account's runtime directory: its systemd --user manager and session bus, rootless
    // docker and podman, and its credential agents (ssh-agent, gpg-agent, keyrings).
    "/run/user/",
    "/var/run/user/",
    // tmux and screen servers: a window of a server outside the session runs whatever the
    // agent types, unjudged (a server the agent started in its own cgroup stays open to it).
    "/tmp/tmux-*",
    "/run/screen/",
    "/var/run/screen/",
];

/// The `DELEGATORS` keys for `names` (a name that cannot be bound is left out, and said).
pub fn keys(names: &[&str]) -> Vec<DelegatorKey> {
    names
        .iter()
        .filter_map(|n| {
            let k = delegator::key(n);
            if k.is_none() {
                tracing::warn!(
                    name = n,
                    "not a unix socket name: no delegator guarded by it"
                );
            }
            k
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_name_can_be_bound() {
        assert_eq!(keys(BUILT_IN).len(), BUILT_IN.len());
        assert!(BUILT_IN.iter().all(|n| n.starts_with('/')));
    }
}
