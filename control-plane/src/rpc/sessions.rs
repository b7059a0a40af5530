//! Checking a daemon's per-session kernel counters (`ReportSessions`) at the API edge.

use tonic::Status;

use super::check::{invalid, shorten};
use super::pb;

/// Most sessions in one report: the kernel keeps at most this many
/// (`agent_common::session::MAX_SESSIONS`).
pub const MAX_SESSIONS: usize = agent_common::session::MAX_SESSIONS as usize;

/// Checks a report: bounded, every session named by its group, names short and printable.
pub fn check(sessions: &[pb::SessionCounters]) -> Result<(), Status> {
    if sessions.len() > MAX_SESSIONS {
        return Err(invalid(format!(
            "sessions: {} in one report; at most {MAX_SESSIONS}",
            sessions.len()
        )));
    }
    for (i, s) in sessions.iter().enumerate() {
        if s.agent_group.is_empty() {
            return Err(invalid(format!("sessions[{i}].agent_group is required")));
        }
        for (name, value) in [("agent_group", &s.agent_group), ("session", &s.session)] {
            if value.len() > 256 || value.chars().any(char::is_control) {
                return Err(invalid(format!(
                    "sessions[{i}].{name} {:?} is too long or has control characters",
                    shorten(value)
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(group: &str, name: &str) -> pb::SessionCounters {
        pb::SessionCounters {
            agent_group: group.into(),
            session: name.into(),
            cgroup_id: 7,
            ..Default::default()
        }
    }

    #[test]
    fn reports_are_bounded_and_named() {
        assert!(check(&[session("ai", "s1"), session("ai", "")]).is_ok());
        let e = check(&[session("ai", "s1"), session("", "s2")]).expect_err("no group");
        assert_eq!(e.message(), "sessions[1].agent_group is required");
        let e = check(&[session("ai", "a\nb")]).expect_err("control character");
        assert!(e.message().starts_with("sessions[0].session"), "{e:?}");
        let many = vec![session("ai", "s"); MAX_SESSIONS + 1];
        assert!(check(&many)
            .expect_err("too many")
            .message()
            .contains("at most 4096"));
    }
}
