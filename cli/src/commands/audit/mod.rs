//! `countersign audit`: export, query and verify the audit trail.

pub mod export;
pub mod query;
pub mod verify;

use std::time::SystemTime;

use countersign_api::pb;

use crate::when::parse_time;

/// `audit` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Export the trail (JSON Lines is the verifiable format).
    Export(export::ExportArgs),
    /// Show matching records.
    Query(query::QueryArgs),
    /// Check a JSON Lines export offline: hash chain and signed checkpoints.
    Verify(verify::VerifyArgs),
}

fn time_arg(s: &str) -> Result<SystemTime, String> {
    parse_time(s, SystemTime::now())
}

/// Which records: every given filter must match.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct FilterArgs {
    /// From this time on: RFC 3339 (2026-11-23T14:00:00Z) or an age (1h = an hour ago).
    #[arg(long, value_name = "T", value_parser = time_arg)]
    pub since: Option<SystemTime>,
    /// Before this time (same forms as --since).
    #[arg(long, value_name = "T", value_parser = time_arg)]
    pub until: Option<SystemTime>,
    /// Records about this host.
    #[arg(long)]
    pub host: Option<String>,
    /// Records about this agent group.
    #[arg(long, value_name = "GROUP")]
    pub agent: Option<String>,
    /// Records about this session.
    #[arg(long)]
    pub session: Option<String>,
    /// Records about this rule.
    #[arg(long)]
    pub rule: Option<String>,
    /// Records of this person (who decided or launched).
    #[arg(long)]
    pub person: Option<String>,
    /// Records with this outcome or decision (refused, killed, granted, approved, denied,
    /// expired…).
    #[arg(long)]
    pub decision: Option<String>,
}

impl FilterArgs {
    /// The filter as the server takes it.
    pub fn to_pb(&self) -> pb::AuditFilter {
        pb::AuditFilter {
            since: self.since.map(Into::into),
            until: self.until.map(Into::into),
            host: self.host.clone().unwrap_or_default(),
            agent_group: self.agent.clone().unwrap_or_default(),
            session: self.session.clone().unwrap_or_default(),
            rule: self.rule.clone().unwrap_or_default(),
            person: self.person.clone().unwrap_or_default(),
            decision: self.decision.clone().unwrap_or_default(),
        }
    }

    /// True when records may be left out of the middle of the chain (anything but a time
    /// range), which makes a JSON Lines export unverifiable as a chain.
    pub fn skips_records(&self) -> bool {
        self.host.is_some()
            || self.agent.is_some()
            || self.session.is_some()
            || self.rule.is_some()
            || self.person.is_some()
            || self.decision.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_time_ranges_keep_the_chain() {
        let range = FilterArgs {
            since: Some(SystemTime::UNIX_EPOCH),
            until: Some(SystemTime::now()),
            ..Default::default()
        };
        assert!(!range.skips_records());
        let host = FilterArgs {
            host: Some("build-01".into()),
            ..Default::default()
        };
        assert!(host.skips_records());
        let f = host.to_pb();
        assert_eq!(f.host, "build-01");
        assert_eq!(f.since, None);
    }
}
