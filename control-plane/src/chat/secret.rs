//! Secrets of the chat integrations (tokens, signing secrets, webhook URLs): named in the
//! configuration as `env:NAME` or `file:PATH`, never written in it, never printed.

use std::fmt;

/// A secret value. `Debug` and `Display` show `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Resolves a reference: `env:NAME` (the variable must be set and non-empty) or
    /// `file:PATH` (the file's content, surrounding white space removed). A literal value is
    /// refused: configuration files get copied, logged and committed.
    pub fn resolve(reference: &str) -> Result<Secret, String> {
        let value = if let Some(name) = reference.strip_prefix("env:") {
            std::env::var(name).map_err(|_| format!("environment variable {name} is not set"))?
        } else if let Some(path) = reference.strip_prefix("file:") {
            std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?
        } else {
            return Err(
                "secrets are given as env:NAME or file:PATH, never written in the file".into(),
            );
        };
        let value = value.trim();
        if value.is_empty() {
            return Err(format!("{reference} is empty"));
        }
        Ok(Secret(value.to_owned()))
    }

    /// A secret from a value already in memory (tests, generated keys).
    pub fn from_value(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the one place that sends or checks it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_resolve_and_never_print() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("s");
        std::fs::write(&path, "xoxb-123\n").expect("write");
        let s = Secret::resolve(&format!("file:{}", path.display())).expect("file");
        assert_eq!(s.expose(), "xoxb-123");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert!(Secret::resolve("xoxb-literal")
            .expect_err("literal")
            .contains("env:NAME or file:PATH"));
        assert!(Secret::resolve("env:COUNTERSIGN_SURELY_UNSET_VARIABLE")
            .expect_err("unset")
            .contains("not set"));
        std::fs::write(&path, "  \n").expect("write");
        assert!(Secret::resolve(&format!("file:{}", path.display()))
            .expect_err("empty")
            .contains("empty"));
    }
}
