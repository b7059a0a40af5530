//! The verdict vocabulary on the wire: `agent_common`'s [`Action`], [`Outcome`], [`Mode`]
//! and [`EventKind`] to and from their protobuf enums, and the one way to read (or write) the
//! verdict of an uploaded event record.
//!
//! An event record carries its verdict twice: the typed fields (`rule_action`, `result`,
//! `enforcement`) and, for servers that predate them, the deprecated strings. Readers take
//! the typed field and fall back to the string, so records of older daemons read the same.
#![allow(
    deprecated,
    reason = "the one place that reads and writes the deprecated strings"
)]

pub use agent_common::{event::EventKind, verdict::asks_approval, Action, Mode, Outcome};

use crate::pb;

impl From<Action> for pb::Action {
    fn from(a: Action) -> Self {
        match a {
            Action::Allow => Self::Allow,
            Action::Audit => Self::Audit,
            Action::Deny => Self::Deny,
            Action::Approve => Self::Approve,
        }
    }
}

impl From<Outcome> for pb::Outcome {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Allowed => Self::Allowed,
            Outcome::Refused => Self::Refused,
            Outcome::Killed => Self::Killed,
            Outcome::WouldRefuse => Self::WouldRefuse,
            Outcome::Granted => Self::Granted,
        }
    }
}

impl From<Mode> for pb::EnforcementMode {
    fn from(m: Mode) -> Self {
        match m {
            Mode::Lsm => Self::Lsm,
            Mode::Fallback => Self::Fallback,
        }
    }
}

impl From<EventKind> for pb::OperationKind {
    fn from(k: EventKind) -> Self {
        match k {
            EventKind::Exec => Self::Exec,
            EventKind::Connect => Self::Connect,
            EventKind::ArgvMismatch => Self::ArgvMismatch,
            EventKind::Tamper => Self::Tamper,
        }
    }
}

/// The action of a protobuf enum value; None for unspecified or unknown numbers.
pub fn action_of(v: i32) -> Option<Action> {
    Some(match pb::Action::try_from(v).ok()? {
        pb::Action::Unspecified => return None,
        pb::Action::Allow => Action::Allow,
        pb::Action::Audit => Action::Audit,
        pb::Action::Deny => Action::Deny,
        pb::Action::Approve => Action::Approve,
    })
}

/// The outcome of a protobuf enum value; None for unspecified or unknown numbers.
pub fn outcome_of(v: i32) -> Option<Outcome> {
    Some(match pb::Outcome::try_from(v).ok()? {
        pb::Outcome::Unspecified => return None,
        pb::Outcome::Allowed => Outcome::Allowed,
        pb::Outcome::Refused => Outcome::Refused,
        pb::Outcome::Killed => Outcome::Killed,
        pb::Outcome::WouldRefuse => Outcome::WouldRefuse,
        pb::Outcome::Granted => Outcome::Granted,
    })
}

/// The mode of a protobuf enum value; None for unspecified or unknown numbers.
pub fn mode_of(v: i32) -> Option<Mode> {
    match pb::EnforcementMode::try_from(v).ok()? {
        pb::EnforcementMode::Unspecified => None,
        pb::EnforcementMode::Lsm => Some(Mode::Lsm),
        pb::EnforcementMode::Fallback => Some(Mode::Fallback),
    }
}

/// A judged operation's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Judged {
    pub action: Action,
    pub outcome: Outcome,
    pub mode: Mode,
}

impl Judged {
    /// Writes it into `ev`: the typed fields and the deprecated strings.
    pub fn stamp(&self, ev: &mut pb::EventRecord) {
        ev.set_rule_action(self.action.into());
        ev.set_result(self.outcome.into());
        ev.set_enforcement(self.mode.into());
        ev.action = self.action.as_str().to_owned();
        ev.outcome = self.outcome.as_str().to_owned();
        ev.mode = self.mode.as_str().to_owned();
    }
}

/// What an uploaded record says, field by field: the typed field, else the deprecated string,
/// else None (a record that is not a judged operation, or a daemon's garbage).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Said {
    pub action: Option<Action>,
    pub outcome: Option<Outcome>,
    pub mode: Option<Mode>,
}

impl Said {
    pub fn of(ev: &pb::EventRecord) -> Self {
        Self {
            action: action_of(ev.rule_action).or_else(|| Action::parse(&ev.action)),
            outcome: outcome_of(ev.result).or_else(|| Outcome::parse(&ev.outcome)),
            mode: mode_of(ev.enforcement).or_else(|| Mode::parse(&ev.mode)),
        }
    }

    /// Whether the record asks a human ([`asks_approval`]); false when it does not say.
    pub fn asks_approval(&self) -> bool {
        matches!((self.action, self.outcome), (Some(a), Some(o)) if asks_approval(a, o))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names are hashed into the audit chain and written in every event log: pinned.
    #[test]
    fn the_json_of_every_value_is_pinned() {
        let json = |v: serde_json::Result<String>| v.expect("json");
        let actions: Vec<String> = Action::ALL
            .iter()
            .map(|a| json(serde_json::to_string(a)))
            .collect();
        assert_eq!(
            actions,
            [r#""allow""#, r#""audit""#, r#""deny""#, r#""approve""#]
        );
        let outcomes: Vec<String> = Outcome::ALL
            .iter()
            .map(|o| json(serde_json::to_string(o)))
            .collect();
        assert_eq!(
            outcomes,
            [
                r#""allowed""#,
                r#""refused""#,
                r#""killed""#,
                r#""would_refuse""#,
                r#""granted""#
            ]
        );
        let modes: Vec<String> = Mode::ALL
            .iter()
            .map(|m| json(serde_json::to_string(m)))
            .collect();
        assert_eq!(modes, [r#""lsm""#, r#""fallback""#]);
        let kinds: Vec<String> = EventKind::ALL
            .iter()
            .map(|k| json(serde_json::to_string(k)))
            .collect();
        assert_eq!(
            kinds,
            [
                r#""exec""#,
                r#""connect""#,
                r#""argv_mismatch""#,
                r#""tamper""#
            ]
        );
        for bad in [r#""Approve""#, r#""unknown""#, "1", "null"] {
            assert!(serde_json::from_str::<Action>(bad).is_err(), "{bad}");
        }
        assert_eq!(
            serde_json::from_str::<Outcome>(r#""would_refuse""#).expect("parsed"),
            Outcome::WouldRefuse
        );
    }

    #[test]
    fn every_value_crosses_the_wire_both_ways() {
        for a in Action::ALL {
            assert_eq!(action_of(pb::Action::from(*a) as i32), Some(*a));
        }
        for o in Outcome::ALL {
            assert_eq!(outcome_of(pb::Outcome::from(*o) as i32), Some(*o));
        }
        for m in Mode::ALL {
            assert_eq!(mode_of(pb::EnforcementMode::from(*m) as i32), Some(*m));
        }
        for k in EventKind::ALL {
            // Kinds keep the event log's numbers on the wire.
            assert_eq!(pb::OperationKind::from(*k) as i32, *k as i32);
        }
        assert_eq!(
            (action_of(0), outcome_of(99), mode_of(-1)),
            (None, None, None)
        );
    }

    #[test]
    fn records_of_older_daemons_read_the_same() {
        let verdict = Judged {
            action: Action::Approve,
            outcome: Outcome::Killed,
            mode: Mode::Fallback,
        };
        let mut new = pb::EventRecord::default();
        verdict.stamp(&mut new);
        let old = pb::EventRecord {
            action: "approve".into(),
            outcome: "killed".into(),
            mode: "fallback".into(),
            ..Default::default()
        };
        let expected = Said {
            action: Some(Action::Approve),
            outcome: Some(Outcome::Killed),
            mode: Some(Mode::Fallback),
        };
        assert_eq!((Said::of(&new), Said::of(&old)), (expected, expected));
        assert!(Said::of(&old).asks_approval());
        assert_eq!(
            (new.action.as_str(), new.outcome.as_str(), new.mode.as_str()),
            ("approve", "killed", "fallback"),
            "servers that predate the typed fields read the strings"
        );
        let garbage = pb::EventRecord {
            action: "APPROVE".into(),
            outcome: "refused".into(),
            ..Default::default()
        };
        assert!(!Said::of(&garbage).asks_approval());
        assert_eq!(Said::of(&pb::EventRecord::default()), Said::default());
    }
}
