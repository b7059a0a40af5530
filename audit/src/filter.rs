//! Selecting records for an export.

use std::time::SystemTime;

use super::record::{ActorKind, Record};

/// Which records an export includes. Every set field must match; an empty filter selects
/// everything. A filtered JSON Lines export has gaps, so it no longer verifies as a chain:
/// `verify` wants the unfiltered export (each record still carries its own hash).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Records at or after this time.
    pub since: Option<SystemTime>,
    /// Records strictly before this time.
    pub until: Option<SystemTime>,
    /// `subject.host` equals.
    pub host: Option<String>,
    /// `subject.agent` (agent group) equals.
    pub agent: Option<String>,
    /// `subject.rule` equals.
    pub rule: Option<String>,
    /// The actor is this person (`actor.kind` = person and `actor.id` equals).
    pub person: Option<String>,
    /// `subject.decision` equals (e.g. `refused`, `approved`).
    pub decision: Option<String>,
}

impl Filter {
    /// True when no field is set.
    pub fn is_empty(&self) -> bool {
        *self == Filter::default()
    }

    /// Whether `record` is selected.
    pub fn matches(&self, record: &Record) -> bool {
        let time = record.time.system_time();
        let s = &record.subject;
        self.since.is_none_or(|since| time >= since)
            && self.until.is_none_or(|until| time < until)
            && same(&self.host, &s.host)
            && same(&self.agent, &s.agent)
            && same(&self.rule, &s.rule)
            && same(&self.decision, &s.decision)
            && self
                .person
                .as_ref()
                .is_none_or(|p| record.actor.kind == ActorKind::Person && record.actor.id == *p)
    }
}

fn same(wanted: &Option<String>, actual: &Option<String>) -> bool {
    match wanted {
        None => true,
        Some(w) => actual.as_ref() == Some(w),
    }
}
