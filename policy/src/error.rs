//! Errors (and warnings) that name the file, the line and the agent group or rule concerned,
//! so that `policy check` output can be pasted into an editor's quickfix list.

use std::{fmt, sync::Arc};

/// What an error is about: printed between the location and the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// An agent group, by name.
    Agent(String),
    /// A rule, by id.
    Rule(String),
}

/// One problem found in a policy (also used for compile warnings).
///
/// Display: `FILE:LINE: rule 'ID': message`, `FILE:LINE: agent 'NAME': message`,
/// `FILE:LINE:COLUMN: message` for YAML syntax errors, `FILE: message` when no line applies
/// (an unreadable file).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", Prefix(self))]
pub struct PolicyError {
    /// The file as the user named it.
    pub file: Arc<str>,
    /// 1-based line, when the problem has a place in the file.
    pub line: Option<usize>,
    /// 1-based column, given for syntax errors.
    pub column: Option<usize>,
    pub subject: Option<Subject>,
    pub message: String,
}

impl PolicyError {
    /// An error at a line of a file.
    pub fn at(file: &Arc<str>, line: usize, subject: Option<Subject>, message: String) -> Self {
        Self {
            file: file.clone(),
            line: Some(line),
            column: None,
            subject,
            message,
        }
    }
}

/// The part before the message: location and subject.
struct Prefix<'a>(&'a PolicyError);

impl fmt::Display for Prefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = self.0;
        write!(f, "{}", e.file)?;
        if let Some(line) = e.line {
            write!(f, ":{line}")?;
            if let Some(column) = e.column {
                write!(f, ":{column}")?;
            }
        }
        f.write_str(": ")?;
        match &e.subject {
            Some(Subject::Agent(name)) => write!(f, "agent '{name}': "),
            Some(Subject::Rule(id)) => write!(f, "rule '{id}': "),
            None => Ok(()),
        }
    }
}

/// Every problem found in a policy, in file order. Display: one error per line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", Lines(&self.0))]
pub struct PolicyErrors(pub Vec<PolicyError>);

impl PolicyErrors {
    /// The errors, in the order they were found.
    pub fn iter(&self) -> std::slice::Iter<'_, PolicyError> {
        self.0.iter()
    }

    /// Number of errors.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is no error (never, for a returned `Err`).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> IntoIterator for &'a PolicyErrors {
    type Item = &'a PolicyError;
    type IntoIter = std::slice::Iter<'a, PolicyError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

struct Lines<'a>(&'a [PolicyError]);

impl fmt::Display for Lines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// An agent group asked for by name (CLI `--agent`) that the policy cannot provide.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GroupLookupError {
    #[error("no agent group '{name}' in the policy (groups: {known})")]
    Unknown { name: String, known: String },
    #[error("the policy has several agent groups ({known}): name one")]
    Ambiguous { known: String },
    #[error("the policy has no agent groups")]
    Empty,
}
