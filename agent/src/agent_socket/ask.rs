//! `request`: asking ahead for an operation the session has not tried. The daemon checks that
//! the policy asks for approval at all, computes the exact binding the kernel will compare
//! (and its operation id), remembers it for the grant order, and forwards the ask to the
//! control plane (queued while the link is down).

use std::{
    net::IpAddr,
    sync::Arc,
    time::{Duration, SystemTime},
};

use agent_common::Action;
use countersign_api::pb;
use policy::Transport;

use super::{
    fingerprint,
    handler::AgentApi,
    host::{Host, Operation},
    protocol::{AgentResponse, ConnectSpec, ExecSpec},
    view,
};
use crate::session::SessionKey;
use agent_common::binding::Binding;

use crate::{
    approvals::refusals::connect_text,
    uplink::{convert, Ask, Link},
};

/// Longest reason accepted (it is shown to approvers, not stored without bound).
const MAX_REASON: usize = 2000;
/// How long `request` waits for the control plane to name the request before answering
/// without an id.
const NAMING_WAIT: Duration = Duration::from_secs(3);

/// An operation ready to forward.
struct Prepared {
    /// Filled in once the rule is known ([`AgentApi::ask`]).
    fingerprint: String,
    text: String,
    op: Operation,
    binary_path: String,
}

impl AgentApi {
    pub(super) async fn ask(
        &self,
        pid: u32,
        key: &SessionKey,
        exec: Option<ExecSpec>,
        connect: Option<ConnectSpec>,
        reason: String,
    ) -> Result<AgentResponse, String> {
        let link = self.link.clone().ok_or(
            "this daemon runs without a control plane (no --server): nobody can approve ahead",
        )?;
        if reason.chars().count() > MAX_REASON {
            return Err(format!("the reason is longer than {MAX_REASON} characters"));
        }
        let host = self.host.clone();
        let mut prepared = tokio::task::spawn_blocking(move || prepare(&*host, pid, exec, connect))
            .await
            .map_err(|e| format!("internal error: {e}"))??;
        let host = self.host.clone();
        let (k, op) = (key.clone(), prepared.op.clone());
        let decision = tokio::task::spawn_blocking(move || host.judge(&k, &op))
            .await
            .map_err(|e| format!("internal error: {e}"))??;
        let rule_number = decision.rule.as_ref().map_or(0, |r| r.number());
        let rule = match decision.action {
            Action::Approve => decision.rule.map(|r| r.id),
            Action::Deny => {
                return Err(format!(
                    "{} is refused without appeal ({}): asking will not help",
                    prepared.text, decision.reason
                ))
            }
            Action::Allow | Action::Audit => {
                return Err(format!(
                    "{} needs no approval ({})",
                    prepared.text, decision.reason
                ))
            }
        };
        let binding = binding_of(&prepared.op, rule_number);
        if binding.truncated() {
            return Err(format!(
                "{} cannot be approved: {}",
                prepared.text,
                crate::grants::GrantError::Truncated
            ));
        }
        prepared.fingerprint = self.bindings.remember(binding);
        let request = self.forward_request(pid, key, &prepared, rule.clone(), rule_number, reason);
        self.table.update(key, &prepared.fingerprint, |e| {
            if e.request_id.is_some() && e.state != crate::approvals::State::Pending {
                // A decided request is never reopened: the server opens a new one.
                e.request_id = None;
                e.decided_by = None;
                e.reason = None;
                e.grant = None;
            }
            e.state = crate::approvals::State::Pending;
            e.operation = Some(prepared.text.clone());
            e.rule = rule.clone();
            e.error = None;
        });
        let ask = Ask {
            key: key.clone(),
            fingerprint: prepared.fingerprint.clone(),
            request,
        };
        let dropped = link.forwarder.submit(ask).inspect_err(|message| {
            self.table.update(key, &prepared.fingerprint, |e| {
                e.error = Some(message.clone());
            });
        })?;
        if let Some(dropped) = dropped {
            tracing::warn!(session = %dropped.key, fingerprint = %dropped.fingerprint, "too many asks waiting for the control plane; the oldest was dropped");
            self.table.update(&dropped.key, &dropped.fingerprint, |e| {
                e.error = Some("dropped: too many requests waited for the control plane".into());
            });
        }
        let entry = self.await_naming(&link, key, &prepared.fingerprint).await;
        if let Some(message) = entry.as_ref().and_then(|e| e.error.clone()) {
            return Err(message);
        }
        let request = entry.map_or_else(
            || view::queued(&prepared.fingerprint, &prepared.text, rule),
            |e| view::request(&e),
        );
        Ok(AgentResponse::Requested { request })
    }

    /// Waits (briefly, and only while the link is up) until the control plane named the
    /// request or refused it.
    async fn await_naming(
        &self,
        link: &Arc<Link>,
        key: &SessionKey,
        fp: &str,
    ) -> Option<crate::approvals::Entry> {
        let mut rx = self.table.subscribe();
        let deadline = tokio::time::Instant::now() + NAMING_WAIT;
        loop {
            let entry = self.table.get(key, fp);
            let named = entry
                .as_ref()
                .is_some_and(|e| e.request_id.is_some() || e.error.is_some());
            if named || !link.connected() {
                return entry;
            }
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                return entry;
            }
        }
    }

    fn forward_request(
        &self,
        pid: u32,
        key: &SessionKey,
        p: &Prepared,
        rule: Option<String>,
        rule_number: u32,
        reason: String,
    ) -> pb::ForwardRequestRequest {
        let proc_ = self.host.process(pid);
        let (cgroup, cgroup_id) = self.host.session_cgroup(key).unwrap_or_default();
        let mut operation = pb::Operation {
            agent_group: key.group.clone(),
            session: key.session.clone(),
            cgroup,
            cgroup_id,
            launching_user: self.host.launching_user(key).unwrap_or_default(),
            uid: proc_.uid,
            gid: proc_.gid,
            pid: proc_.pid,
            tgid: proc_.pid,
            comm: proc_.comm.clone(),
            parents: vec![pb::ParentProcess {
                pid: proc_.pid,
                comm: proc_.comm,
                exe: proc_.exe.unwrap_or_default(),
            }],
            fingerprint: p.fingerprint.clone(),
            rule_number,
            ..Default::default()
        };
        match &p.op {
            Operation::Exec {
                binary,
                stamp,
                argv,
                ..
            } => {
                operation.binary = p.binary_path.clone();
                operation.device = format!("{}:{}", binary.major(), binary.minor());
                operation.inode = binary.ino;
                operation.write_stamp = *stamp;
                operation.argv = argv.clone();
            }
            Operation::Connect {
                addr,
                port,
                transport,
            } => {
                operation.destination = Some(pb::Destination {
                    address: addr.to_string(),
                    port: u32::from(*port),
                    protocol: transport.as_str().to_owned(),
                    family: if addr.is_ipv4() { "ipv4" } else { "ipv6" }.to_owned(),
                });
            }
        }
        pb::ForwardRequestRequest {
            operation: Some(operation),
            rule: rule.unwrap_or_default(),
            time: Some(convert::timestamp(SystemTime::now())),
            attempts: 0,
            reason,
        }
    }
}

/// Validates the ask and computes its fingerprint (blocking: stats files).
fn prepare(
    host: &dyn Host,
    pid: u32,
    exec: Option<ExecSpec>,
    connect: Option<ConnectSpec>,
) -> Result<Prepared, String> {
    match (exec, connect) {
        (Some(e), None) => {
            if !e.binary.contains('/') {
                return Err(format!(
                    "binary {:?} must be a path (look it up in PATH first)",
                    e.binary
                ));
            }
            if e.argv.is_empty() {
                return Err("argv must hold at least argv[0]".into());
            }
            fingerprint::check_argv(&e.argv).map_err(|e| e.to_string())?;
            let id = host.file_identity(pid, &e.binary)?;
            Ok(Prepared {
                fingerprint: String::new(),
                text: e.argv.join(" "),
                op: Operation::Exec {
                    binary: id,
                    stamp: host.write_stamp(id),
                    path: e.binary.clone(),
                    argv: e.argv,
                    parent: host.exe_identity(pid),
                },
                binary_path: e.binary,
            })
        }
        (None, Some(c)) => {
            let addr: IpAddr = c.address.parse().map_err(|_| {
                format!(
                    "address {:?} is not an IP address (the kernel judges addresses, not names)",
                    c.address
                )
            })?;
            fingerprint::protocol_number(&c.protocol).map_err(|e| e.to_string())?;
            let transport = if c.protocol == "udp" {
                Transport::Udp
            } else {
                Transport::Tcp
            };
            Ok(Prepared {
                fingerprint: String::new(),
                text: connect_text(&addr.to_string(), c.port, &c.protocol),
                op: Operation::Connect {
                    addr,
                    port: c.port,
                    transport,
                },
                binary_path: String::new(),
            })
        }
        _ => Err("give exactly one of `exec` or `connect`".into()),
    }
}

/// The exact operation the kernel will compare for `op`, refused by rule `rule` (its number).
fn binding_of(op: &Operation, rule: u32) -> Binding {
    match op {
        Operation::Exec {
            binary,
            stamp,
            argv,
            ..
        } => Binding::exec(rule, binary.dev, binary.ino, argv).stamped(*stamp),
        Operation::Connect {
            addr,
            port,
            transport,
        } => {
            let protocol = match transport {
                Transport::Udp => libc::IPPROTO_UDP,
                Transport::Tcp => libc::IPPROTO_TCP,
            };
            Binding::connect(rule, *addr, *port, protocol as u16)
        }
    }
}
