//! Commands that talk to a running daemon over its admin socket.

use std::{ffi::OsString, path::Path, time::Duration};

use anyhow::{bail, Result};
use countersign_api::agent_socket::{SOCKET_ENV, SOCKET_NAME};

use crate::{
    admin_socket::{
        client::call,
        protocol::{ProtectionState, Request, Response},
    },
    cgroup::Hierarchy,
    cli::RunDir,
    session::{
        account::Account,
        environment::{self, Pass},
        launch,
    },
};

pub fn status(socket: &Path, json: bool) -> Result<i32> {
    let Response::Status(s) = call(socket, &Request::Status)? else {
        bail!("unexpected reply")
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(0);
    }
    println!("mode:      {} ({})", s.mode, s.mode_reason);
    println!("kernel:    {}", s.kernel);
    println!("daemon:    pid {}", s.pid);
    println!(
        "policy:    generation {}, {} rules, from {}",
        s.generation,
        s.rules,
        s.policy_files.join(", ")
    );
    println!("event log: {}", s.event_log);
    if !s.agent_socket.is_empty() {
        println!("agents:    {}", s.agent_socket);
    }
    match &s.uplink {
        None => println!("control plane: none (standalone)"),
        Some(u) => {
            let state = if u.connected {
                format!("connected as host {}", u.host)
            } else {
                format!(
                    "NOT connected ({}); enforcing, events spooled",
                    u.last_error.as_deref().unwrap_or("connecting")
                )
            };
            println!("control plane: {} — {state}", u.server);
            println!(
                "  acked sequence {} | spooled {} | decision cursor {} | asks queued {}",
                u.acked,
                u.spooled,
                if u.cursor.is_empty() { "-" } else { &u.cursor },
                u.queued_requests
            );
            if let Some(rev) = &s.policy_revision {
                println!("  policy: control plane revision {rev}");
            }
        }
    }
    if let Some(o) = &s.previous_outage {
        println!(
            "previous daemon: pid {} {} at {}; no daemon for {} s, {} events lost meanwhile \
             (the pinned programs kept enforcing)",
            o.pid,
            if o.clean { "stopped" } else { "DIED" },
            o.since,
            o.seconds,
            o.events_lost
        );
    }
    println!("programs:");
    for p in &s.programs {
        println!(
            "  {:<22} {:<45} {}",
            p.name,
            p.hook,
            if p.pinned {
                "pinned"
            } else {
                "NOT pinned: stops with the daemon"
            }
        );
    }
    println!("agent groups:");
    for g in &s.groups {
        let accounts: Vec<String> = g.accounts.iter().map(|u| format!("uid {u}")).collect();
        println!(
            "  {:<20} {} (id {}){}{}{}",
            g.name,
            g.cgroup,
            g.cgroup_id,
            if g.monitor { " monitor mode" } else { "" },
            if accounts.is_empty() {
                String::new()
            } else {
                format!(", and wherever they run: {}", accounts.join(", "))
            },
            if g.permit.is_empty() {
                String::new()
            } else {
                format!("; permits {}", g.permit.join(", "))
            }
        );
    }
    let c = &s.counters;
    println!("counters:");
    println!(
        "  exec judged {} refused {} | connect judged {} refused {} | grants used {}",
        c.exec_judged, c.exec_refused, c.connect_judged, c.connect_refused, c.grants_used
    );
    println!("  events logged {} lost {} | argv mismatches {} | failed closed {} | cgroup read errors {}", c.events_logged, c.events_lost, c.argv_mismatch, c.failed_closed, c.watch_errors);
    if !s.protections.is_empty() {
        println!("protections ({} mode):", s.mode);
        for p in &s.protections {
            let state = match p.state {
                ProtectionState::Enforced => "enforced",
                ProtectionState::Detected => "DETECTED ONLY",
                ProtectionState::Absent => "ABSENT",
            };
            println!("  {:<24} {state:<13} {}", p.name, p.how);
        }
    }
    if !s.sessions.is_empty() {
        println!("sessions (kernel counts, whatever reached the log):");
        for x in &s.sessions {
            let missing = if x.events_lost + x.events_limited > 0 {
                " — EVENTS MISSING from the log"
            } else {
                ""
            };
            println!(
                "  {:<40} refused {} granted {} | events lost {} rate-limited {}{missing}",
                x.cgroup, x.refused, x.granted, x.events_lost, x.events_limited
            );
        }
    }
    Ok(0)
}

pub fn reload(socket: &Path) -> Result<i32> {
    let Response::Reloaded {
        generation,
        warnings,
    } = call(socket, &Request::Reload)?
    else {
        bail!("unexpected reply")
    };
    for w in warnings {
        eprintln!("warning: {w}");
    }
    println!("policy reloaded (generation {generation})");
    Ok(0)
}

pub fn grant(
    socket: &Path,
    agent: String,
    session: Option<String>,
    fingerprint: String,
    uses: u32,
    ttl: Duration,
) -> Result<i32> {
    let req = Request::Grant {
        agent,
        session,
        fingerprint,
        uses,
        ttl_ms: ttl.as_millis() as u64,
    };
    let Response::Granted { grant_id } = call(socket, &req)? else {
        bail!("unexpected reply")
    };
    println!("{grant_id}");
    Ok(0)
}

/// What `launch` was asked for, besides the run directory and the command.
pub struct Launch<'a> {
    pub agent: &'a str,
    pub session: Option<&'a str>,
    /// `--env` arguments.
    pub env: &'a [OsString],
    /// `--user`.
    pub user: Option<&'a str>,
}

pub fn launch(run_dir: &RunDir, l: &Launch<'_>, command: &[OsString]) -> Result<i32> {
    let Launch {
        agent,
        session,
        env,
        user,
    } = *l;
    let account = match user.map(Account::resolve).transpose() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("countersign-agent launch: {e}");
            return Ok(1);
        }
    };
    // SAFETY: geteuid has no preconditions.
    let runs_as = account
        .as_ref()
        .map_or_else(|| unsafe { libc::geteuid() }, |a| a.uid);
    let passed: Result<Vec<Pass>, _> = env.iter().map(|e| Pass::parse(e)).collect();
    let passed = match passed {
        Ok(p) => p,
        Err(e) => {
            eprintln!("countersign-agent launch: {e}");
            return Ok(1);
        }
    };
    let socket = &run_dir.socket();
    // The name is fixed here (launch would pick the same default: same pid) so that the
    // daemon can record who launched it before anything runs in it.
    let session = session.map_or_else(
        || launch::default_session_name(std::process::id()),
        str::to_owned,
    );
    if let Err(e) = launch::validate_session(&session) {
        eprintln!("countersign-agent launch: {e}");
        return Ok(e.exit_code());
    }
    let (user, uid) = crate::session::registry::invoking_user();
    let Response::Group { cgroup, mount } = call(
        socket,
        &Request::Group {
            agent: agent.into(),
        },
    )?
    else {
        bail!("unexpected reply")
    };
    let Response::Session { warnings, .. } = call(
        socket,
        &Request::Session {
            agent: agent.into(),
            session: session.clone(),
            user,
            uid,
            runs_as: Some(runs_as),
        },
    )?
    else {
        bail!("unexpected reply")
    };
    for w in &warnings {
        eprintln!("countersign-agent launch: warning: {w}");
    }
    let hierarchy = Hierarchy::at(mount);
    let mut env = environment::session_env(std::env::vars_os(), &passed);
    env.push((
        SOCKET_ENV.into(),
        run_dir.run_dir.join(SOCKET_NAME).into_os_string(),
    ));
    match launch::launch(
        &hierarchy,
        &cgroup,
        Some(agent),
        Some(&session),
        command,
        &env,
        account.as_ref(),
    ) {
        Ok(never) => match never {},
        Err(e) => {
            eprintln!("countersign-agent launch: {e}");
            Ok(e.exit_code())
        }
    }
}
