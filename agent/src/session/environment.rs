//! The environment a session's command starts with. `launch` does not hand the agent the
//! launcher's environment — tokens, `SSH_AUTH_SOCK`, `KUBECONFIG`, a person's
//! `COUNTERSIGN_TOKEN` would all be ways for the agent to act as the person who started it —
//! but an allow-list of what programs need to run ([`KEPT`], and the locale's `LC_*`), plus
//! what the launcher names with `--env NAME` (its own value) or `--env NAME=VALUE`.
//!
//! `COUNTERSIGN_*` variables are never passed: they carry a person's server, certificates or
//! token (with which an agent could try to approve its own requests), or they are the
//! session's own, which `launch` sets (`COUNTERSIGN_SESSION`, `COUNTERSIGN_AGENT`,
//! `COUNTERSIGN_AGENT_SOCKET`). `COUNTERSIGN_LOG` (a log level) is the one exception.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

/// Variables kept from the launcher's environment.
pub const KEPT: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "TERM",
    "COLORTERM",
    "TZ",
    "TMPDIR",
];

/// Prefix of the variables that are never passed (but see [`LOG`]).
const RESERVED_PREFIX: &str = "COUNTERSIGN_";
/// The reserved variable that may be passed: a log level.
const LOG: &str = "COUNTERSIGN_LOG";

/// A `--env` argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pass {
    pub name: String,
    /// `NAME=VALUE`; None: the launcher's own value (nothing when it has none).
    pub value: Option<OsString>,
}

/// Why a `--env` argument is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    #[error(
        "--env {0:?}: not a variable name (letters, digits and `_`, not starting with a digit)"
    )]
    InvalidName(String),
    #[error(
        "--env {0}: COUNTERSIGN_* variables are never passed to an agent: they carry a \
         person's server, certificates or token (an agent must never be able to approve its \
         own requests), or they are the session's own, which launch sets"
    )]
    Reserved(String),
}

impl Pass {
    /// Parses `NAME` or `NAME=VALUE`.
    pub fn parse(arg: &OsStr) -> Result<Self, EnvError> {
        let bytes = arg.as_bytes();
        let (name, value) = match bytes.iter().position(|b| *b == b'=') {
            Some(i) => (
                &bytes[..i],
                Some(OsStr::from_bytes(&bytes[i + 1..]).to_owned()),
            ),
            None => (bytes, None),
        };
        let name = std::str::from_utf8(name)
            .ok()
            .filter(|n| valid_name(n))
            .ok_or_else(|| EnvError::InvalidName(arg.to_string_lossy().into_owned()))?;
        if name.starts_with(RESERVED_PREFIX) && name != LOG {
            return Err(EnvError::Reserved(name.to_owned()));
        }
        Ok(Self {
            name: name.to_owned(),
            value,
        })
    }
}

fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether the launcher's variable `name` is kept without being asked for.
fn kept(name: &OsStr) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    KEPT.contains(&name) || (name.starts_with("LC_") && valid_name(name))
}

/// The session command's environment: the kept part of `launcher` (the launcher's
/// environment), then each of `passed` in order (a later one wins).
pub fn session_env(
    launcher: impl IntoIterator<Item = (OsString, OsString)>,
    passed: &[Pass],
) -> Vec<(OsString, OsString)> {
    let launcher: Vec<(OsString, OsString)> = launcher.into_iter().collect();
    let mut env: Vec<(OsString, OsString)> = launcher
        .iter()
        .filter(|(name, _)| kept(name))
        .cloned()
        .collect();
    for p in passed {
        let name = OsString::from(&p.name);
        let value = match &p.value {
            Some(v) => Some(v.clone()),
            None => launcher
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone()),
        };
        env.retain(|(n, _)| *n != name);
        if let Some(v) = value {
            env.push((name, v));
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(n, v)| (OsString::from(n), OsString::from(v)))
            .collect()
    }

    fn pass(arg: &str) -> Pass {
        Pass::parse(OsStr::new(arg)).expect("a valid --env")
    }

    /// What an agent would use to act as the person who launched it stays behind.
    #[test]
    fn only_the_allow_list_and_what_is_named_reach_the_agent() {
        let launcher = vars(&[
            ("PATH", "/usr/bin"),
            ("HOME", "/home/dave"),
            ("LC_ALL", "C.UTF-8"),
            ("COUNTERSIGN_TOKEN", "person-token"),
            ("COUNTERSIGN_KEY", "/home/dave/.config/countersign/key.pem"),
            ("SSH_AUTH_SOCK", "/run/user/1000/ssh"),
            ("KUBECONFIG", "/home/dave/.kube/prod"),
            ("XDG_RUNTIME_DIR", "/run/user/1000"),
            ("DBUS_SESSION_BUS_ADDRESS", "unix:path=/run/user/1000/bus"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("PROJECT", "web"),
        ]);
        let env = session_env(launcher.clone(), &[]);
        assert_eq!(
            env,
            vars(&[
                ("PATH", "/usr/bin"),
                ("HOME", "/home/dave"),
                ("LC_ALL", "C.UTF-8")
            ])
        );
        let env = session_env(
            launcher,
            &[pass("PROJECT"), pass("MISSING"), pass("PATH=/opt/bin")],
        );
        assert_eq!(
            env,
            vars(&[
                ("HOME", "/home/dave"),
                ("LC_ALL", "C.UTF-8"),
                ("PROJECT", "web"),
                ("PATH", "/opt/bin"),
            ])
        );
    }

    #[test]
    fn countersign_variables_are_never_passed() {
        for name in [
            "COUNTERSIGN_TOKEN",
            "COUNTERSIGN_TOKEN=x",
            "COUNTERSIGN_SESSION=other",
            "COUNTERSIGN_AGENT_SOCKET=/tmp/fake.sock",
        ] {
            assert!(
                matches!(Pass::parse(OsStr::new(name)), Err(EnvError::Reserved(_))),
                "{name}"
            );
        }
        assert_eq!(pass("COUNTERSIGN_LOG=debug").name, "COUNTERSIGN_LOG");
        for bad in ["", "=x", "1X", "A-B", "A B=c"] {
            assert!(
                matches!(Pass::parse(OsStr::new(bad)), Err(EnvError::InvalidName(_))),
                "{bad:?}"
            );
        }
        assert_eq!(
            pass("EMPTY=").value.as_deref(),
            Some(OsStr::new("")),
            "an empty value is a value"
        );
    }
}
