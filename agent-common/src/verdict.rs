//! The verdict vocabulary: what a rule said ([`Action`]), what happened ([`Outcome`]), how it
//! was enforced ([`Mode`]) and what was judged ([`crate::event::EventKind`]).
//!
//! Defined once, for the kernel programs (the numbers), the daemon's event log, the agent
//! socket, the wire and the server (the names). The names are part of event logs, of exports
//! and of the audit chain's hashed records: never rename one. With the `serde` feature each
//! type is (de)serialized as its name, and only as that.

/// Declares, for a fieldless enum, its stable names: `as_str`, `parse`, `ALL`, `Display` and,
/// with the `serde` feature, serde as the name.
macro_rules! names {
    ($ty:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The stable name.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }

            /// The value named `s` (exactly: names are lower case).
            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($name => Some($ty::$variant),)+
                    _ => None,
                }
            }
        }

        impl core::fmt::Display for $ty {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        #[cfg(feature = "serde")]
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        #[cfg(feature = "serde")]
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Name;
                impl serde::de::Visitor<'_> for Name {
                    type Value = $ty;
                    fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                        f.write_str(concat!("one of:", $(" ", $name),+))
                    }
                    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<$ty, E> {
                        $ty::parse(s).ok_or_else(|| E::unknown_variant(s, &[$($name),+]))
                    }
                }
                d.deserialize_str(Name)
            }
        }
    };
}
pub(crate) use names;

/// What a rule (or an agent group's default) does with a matching operation.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    Allow = 0,
    /// Allow and report.
    Audit = 1,
    /// Refuse and report.
    Deny = 2,
    /// Refuse, report, and raise an approval request; a matching grant lets it through.
    Approve = 3,
}

names!(Action {
    Allow => "allow",
    Audit => "audit",
    Deny => "deny",
    Approve => "approve",
});

impl Action {
    pub const fn from_u32(v: u32) -> Option<Self> {
        match v {
            0 => Some(Self::Allow),
            1 => Some(Self::Audit),
            2 => Some(Self::Deny),
            3 => Some(Self::Approve),
            _ => None,
        }
    }

    /// Whether the operation is refused (before grants and monitor mode are considered).
    pub const fn refuses(self) -> bool {
        matches!(self, Self::Deny | Self::Approve)
    }
}

/// How strict an action (`Action as u32`) is: allow < audit < approve < deny. A floor such as a
/// group's `agent_written` applies when it is stricter than what the rules said.
#[inline(always)]
pub const fn strictness(action: u32) -> u32 {
    match action {
        a if a == Action::Deny as u32 => 3,
        a if a == Action::Approve as u32 => 2,
        a => a,
    }
}

/// How exec refusals are enforced. Reported in every event and by `status`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// BPF LSM `bprm_check_security`: the exec fails with EPERM.
    Lsm = 1,
    /// Tracepoints: the process is killed with SIGKILL before the new image runs.
    Fallback = 2,
}

names!(Mode {
    Lsm => "lsm",
    Fallback => "fallback",
});

impl Mode {
    pub const fn from_u32(v: u32) -> Option<Self> {
        match v {
            1 => Some(Self::Lsm),
            2 => Some(Self::Fallback),
            _ => None,
        }
    }
}

/// What happened to a judged operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Let through (allow, or audit and reported).
    Allowed,
    /// Refused by the kernel (LSM: EPERM; connects in both modes).
    Refused,
    /// Refused by killing the process (fallback mode execs).
    Killed,
    /// Monitor mode: it would have been refused.
    WouldRefuse,
    /// Let through by a grant.
    Granted,
}

names!(Outcome {
    Allowed => "allowed",
    Refused => "refused",
    Killed => "killed",
    WouldRefuse => "would_refuse",
    Granted => "granted",
});

impl Outcome {
    /// Whether the operation did not happen.
    pub const fn refused(self) -> bool {
        matches!(self, Self::Refused | Self::Killed)
    }
}

/// Whether a judged operation asks a human: a rule said `approve` and the kernel refused it.
/// The one answer to "is this an approval request?", for the daemon and the server alike.
pub const fn asks_approval(action: Action, outcome: Outcome) -> bool {
    matches!(action, Action::Approve) && outcome.refused()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(*a));
            assert_eq!(Action::from_u32(*a as u32), Some(*a));
        }
        for m in Mode::ALL {
            assert_eq!(Mode::parse(m.as_str()), Some(*m));
            assert_eq!(Mode::from_u32(*m as u32), Some(*m));
        }
        for o in Outcome::ALL {
            assert_eq!(Outcome::parse(o.as_str()), Some(*o));
        }
        assert_eq!(Action::parse("Approve"), None);
        assert_eq!(Outcome::parse(""), None);
    }

    #[test]
    fn only_a_refused_approve_asks() {
        let asking: usize = Action::ALL
            .iter()
            .flat_map(|a| Outcome::ALL.iter().map(move |o| asks_approval(*a, *o)))
            .filter(|x| *x)
            .count();
        assert_eq!(asking, 2);
        assert!(asks_approval(Action::Approve, Outcome::Refused));
        assert!(asks_approval(Action::Approve, Outcome::Killed));
        assert!(!asks_approval(Action::Approve, Outcome::WouldRefuse));
        assert!(!asks_approval(Action::Deny, Outcome::Refused));
    }
}
