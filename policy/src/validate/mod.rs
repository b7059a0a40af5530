//! Raw files → [`Policy`], collecting every error of every file before giving up.

mod agent;
mod exec;
mod network;
mod rule;

use std::{
    collections::{HashMap, HashSet},
    path::PathBuf,
    sync::Arc,
};

use crate::{
    error::{PolicyError, PolicyErrors, Subject},
    model::{AgentGroup, Location, Policy},
    parse::{parse, RawFile},
    raw::line,
};

/// The version of the format this crate reads.
pub const VERSION: &str = "1";

impl Policy {
    /// Reads, parses and validates policy files; agent groups and rules are taken in the
    /// order given (file by file). All errors of all files are returned together.
    pub fn load(paths: &[PathBuf]) -> Result<Policy, PolicyErrors> {
        let files = paths
            .iter()
            .map(|p| {
                let name: Arc<str> = p.display().to_string().into();
                (name, std::fs::read_to_string(p).map_err(|e| e.to_string()))
            })
            .collect();
        build(files)
    }

    /// Parses and validates one policy text; `name` stands for the file in errors.
    pub fn from_str(name: &str, text: &str) -> Result<Policy, PolicyErrors> {
        Self::from_sources([(name, text)])
    }

    /// Parses and validates a document given as text (e.g. received over the API); `origin`
    /// names it in errors (`origin:LINE: rule 'ID': …`). Same validation as [`Policy::load`].
    pub fn parse_str(origin: &str, text: &str) -> Result<Policy, PolicyErrors> {
        Self::from_str(origin, text)
    }

    /// Like [`Policy::load`] for texts already in memory: `(name, text)` pairs.
    pub fn from_sources<'a>(
        sources: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Policy, PolicyErrors> {
        build(
            sources
                .into_iter()
                .map(|(n, t)| (Arc::from(n), Ok(t.to_owned())))
                .collect(),
        )
    }
}

/// Where errors of one agent group or rule go.
pub(crate) struct Scope<'a> {
    pub file: &'a Arc<str>,
    pub subject: Option<Subject>,
    pub errors: &'a mut Vec<PolicyError>,
    /// Whether this item had an error (and must be left out of the policy).
    pub failed: bool,
}

impl Scope<'_> {
    pub fn err(&mut self, line: usize, message: impl Into<String>) {
        self.failed = true;
        let e = PolicyError::at(self.file, line, self.subject.clone(), message.into());
        self.errors.push(e);
    }
}

fn build(files: Vec<(Arc<str>, Result<String, String>)>) -> Result<Policy, PolicyErrors> {
    let mut errors = Vec::new();
    let order: Vec<Arc<str>> = files.iter().map(|(f, _)| f.clone()).collect();
    let mut parsed: Vec<RawFile> = Vec::new();
    for (file, text) in files {
        match text {
            Err(e) => errors.push(PolicyError {
                file,
                line: None,
                column: None,
                subject: None,
                message: format!("cannot read the file: {e}"),
            }),
            Ok(text) => {
                if let Some(raw) = parse(&file, &text, &mut errors) {
                    check_version(&raw, &mut errors);
                    parsed.push(raw);
                }
            }
        }
    }
    let agents = agents(&parsed, &mut errors);
    let known: HashSet<&str> = parsed
        .iter()
        .flat_map(|f| &f.agents)
        .map(|a| a.raw.name.as_str())
        .collect();
    let mut rules = Vec::new();
    let mut seen: HashMap<String, Location> = HashMap::new();
    for f in &parsed {
        for item in &f.rules {
            let Some(r) = rule::validate(&f.file, item, &known, &mut errors) else {
                continue;
            };
            if let Some(first) = seen.get(&r.id) {
                let msg = format!("duplicate rule id (first defined at {first})");
                errors.push(PolicyError::at(
                    &f.file,
                    item.line,
                    Some(Subject::Rule(r.id)),
                    msg,
                ));
                continue;
            }
            seen.insert(r.id.clone(), r.location.clone());
            rules.push(r);
        }
    }
    if errors.is_empty() && agents.is_empty() {
        let file = order
            .first()
            .cloned()
            .unwrap_or_else(|| Arc::from("<policy>"));
        let message = "the policy defines no agent groups: nothing would be enforced".to_owned();
        errors.push(PolicyError {
            file,
            line: None,
            column: None,
            subject: None,
            message,
        });
    }
    if errors.is_empty() {
        return Ok(Policy { agents, rules });
    }
    // File order, then line: the order a reader fixes them in.
    let rank = |f: &Arc<str>| order.iter().position(|o| o == f).unwrap_or(usize::MAX);
    errors.sort_by_key(|e| (rank(&e.file), e.line.unwrap_or(0)));
    Err(PolicyErrors(errors))
}

fn check_version(raw: &RawFile, errors: &mut Vec<PolicyError>) {
    match &raw.version {
        None => {
            let msg = format!("missing 'version: {VERSION}' (the format version)");
            errors.push(PolicyError::at(&raw.file, 1, None, msg));
        }
        Some(v) if v.as_str() != VERSION => {
            let msg = format!(
                "unsupported version '{}': this agent reads version {VERSION}",
                v.as_str()
            );
            errors.push(PolicyError::at(&raw.file, line(v.span()), None, msg));
        }
        Some(_) => {}
    }
}

/// Agent groups of every file: each valid, names unique, cgroups disjoint.
fn agents(parsed: &[RawFile], errors: &mut Vec<PolicyError>) -> Vec<AgentGroup> {
    let mut out: Vec<AgentGroup> = Vec::new();
    for f in parsed {
        for item in &f.agents {
            let Some(a) = agent::validate(&f.file, item, errors) else {
                continue;
            };
            let subject = Some(Subject::Agent(a.name.clone()));
            if let Some(first) = out.iter().find(|o| o.name == a.name) {
                let msg = format!(
                    "duplicate agent group name (first defined at {})",
                    first.location
                );
                errors.push(PolicyError::at(&f.file, item.line, subject, msg));
                continue;
            }
            for o in &out {
                if let Some(msg) = agent::overlap(&a, o) {
                    errors.push(PolicyError::at(
                        &f.file,
                        line(item.raw.cgroup.span()),
                        subject.clone(),
                        msg,
                    ));
                }
                if let Some(account) = agent::shared_account(&a, o) {
                    let msg = format!(
                        "account '{account}' is also an account of agent group '{}' ({}): an \
                         account belongs to one group",
                        o.name, o.location
                    );
                    let at = item
                        .raw
                        .accounts
                        .as_ref()
                        .map_or(item.line, |v| line(v.span()));
                    errors.push(PolicyError::at(&f.file, at, subject.clone(), msg));
                }
            }
            out.push(a);
        }
    }
    out
}

/// Agent group names and rule ids: `[a-z0-9][a-z0-9._-]*`, at most 64 characters.
pub(crate) fn check_name(what: &str, s: &str) -> Result<(), String> {
    let ok_first = s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit());
    let ok_rest = s
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
    if s.is_empty() {
        Err(format!("{what} is empty"))
    } else if !ok_first || !ok_rest {
        Err(format!(
            "{what} '{s}' must match [a-z0-9][a-z0-9._-]* (lower case, digits, . _ -)"
        ))
    } else if s.len() > 64 {
        Err(format!("{what} '{s}' is longer than 64 characters"))
    } else {
        Ok(())
    }
}
