//! The people file: YAML, unknown fields refused, every error naming the file and line.
//!
//! ```yaml
//! default_approvers: [security]
//! people:
//!   - name: alice
//!     groups: [sre]
//!     roles: [approver]
//!     tokens: ["sha256:<64 hex>"]   # optional; SHA-256 of a bearer token
//! ```

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use marked_yaml::{from_node, parse_yaml_with_options, LoadError, LoaderOptions, Spanned};
use serde::Deserialize;

use super::{People, Person, Role, TokenDigest};

/// Every problem found in a people file, one `FILE:LINE: message` per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PeopleError {
    /// The file as named by the caller.
    pub file: String,
    /// `(line, message)`, line 0 when no line applies.
    pub problems: Vec<(usize, String)>,
}

impl fmt::Display for PeopleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (line, message)) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            if *line == 0 {
                write!(f, "{}: {message}", self.file)?;
            } else {
                write!(f, "{}:{line}: {message}", self.file)?;
            }
        }
        Ok(())
    }
}

type Str = Spanned<String>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    default_approvers: Vec<Str>,
    #[serde(default)]
    people: Vec<Spanned<RawPerson>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPerson {
    name: Str,
    #[serde(default)]
    groups: Vec<Str>,
    #[serde(default)]
    roles: Vec<Str>,
    #[serde(default)]
    tokens: Vec<Str>,
}

fn line_of<T>(s: &Spanned<T>) -> usize {
    s.span().start().map_or(0, |m| m.line())
}

/// Reads and validates a people file.
pub fn load(path: &Path) -> Result<People, PeopleError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| PeopleError {
        file: name.clone(),
        problems: vec![(0, format!("cannot read the people file: {e}"))],
    })?;
    parse(&name, &text)
}

/// Parses and validates a people file given as text; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<People, PeopleError> {
    let fail = |problems| PeopleError {
        file: file.to_owned(),
        problems,
    };
    if text.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#')
    }) {
        // An empty file is a valid "nobody has roles" file.
        return Ok(People::default());
    }
    let options = LoaderOptions::default().error_on_duplicate_keys(true);
    let root = parse_yaml_with_options(0, text, options).map_err(|e| fail(vec![load_error(&e)]))?;
    let raw: RawFile = from_node(&root).map_err(|e| {
        let line = e.start_mark().map_or(0, |m| m.line());
        fail(vec![(line, e.to_string())])
    })?;
    let mut problems = Vec::new();
    let default_approvers = groups(&raw.default_approvers, "default_approvers", &mut problems);
    let mut people: Vec<Person> = Vec::new();
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut tokens: HashMap<String, String> = HashMap::new();
    for raw_person in &raw.people {
        let at = line_of(raw_person);
        let name = raw_person.name.as_str();
        let name_line = line_of(&raw_person.name).max(at);
        if !crate::tls::identity::valid_name(name) {
            problems.push((
                name_line,
                format!(
                    "person name {name:?} must match [a-z0-9][a-z0-9._-]* (as in certificates)"
                ),
            ));
        } else if let Some(first) = names.insert(name.to_owned(), name_line) {
            problems.push((
                name_line,
                format!("person '{name}' is listed twice (first at line {first})"),
            ));
        }
        let mut roles = Vec::new();
        for r in &raw_person.roles {
            match Role::parse(r.as_str()) {
                Some(role) if !roles.contains(&role) => roles.push(role),
                Some(_) => {}
                None => problems.push((
                    line_of(r).max(at),
                    format!(
                        "person '{name}': unknown role '{}' (expected approver, admin or auditor)",
                        r.as_str()
                    ),
                )),
            }
        }
        let mut digests = Vec::new();
        for t in &raw_person.tokens {
            match TokenDigest::parse(t.as_str()) {
                Ok(d) => {
                    // One token for two people would make the caller ambiguous.
                    if let Some(other) = tokens.insert(d.to_string(), name.to_owned()) {
                        problems.push((
                            line_of(t).max(at),
                            format!(
                                "person '{name}': this token digest is also listed for '{other}'"
                            ),
                        ));
                    }
                    digests.push(d);
                }
                // Never echo the value: it may be a token pasted by mistake.
                Err(e) => problems.push((line_of(t).max(at), format!("person '{name}': {e}"))),
            }
        }
        let groups = groups(
            &raw_person.groups,
            &format!("person '{name}': groups"),
            &mut problems,
        );
        people.push(Person {
            name: name.to_owned(),
            groups,
            roles,
            tokens: digests,
        });
    }
    if !problems.is_empty() {
        problems.sort_by_key(|(line, _)| *line);
        return Err(fail(problems));
    }
    Ok(People::new(default_approvers, people))
}

/// Group names: non-empty, without blanks (like a rule's `approvers.groups`), each once.
fn groups(list: &[Str], what: &str, problems: &mut Vec<(usize, String)>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for g in list {
        let name = g.as_str();
        if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            problems.push((
                line_of(g),
                format!(
                    "{what}: group '{}' is empty or has blanks",
                    name.escape_debug()
                ),
            ));
        } else if !out.iter().any(|o| o == name) {
            out.push(name.to_owned());
        }
    }
    out
}

fn load_error(e: &LoadError) -> (usize, String) {
    let (mark, message) = match e {
        LoadError::TopLevelMustBeMapping(m) | LoadError::TopLevelMustBeSequence(m) => (
            Some(*m),
            "the people file must be a mapping with default_approvers and people".to_owned(),
        ),
        LoadError::UnexpectedAnchor(m) => (
            Some(*m),
            "YAML anchors and aliases are not supported".into(),
        ),
        LoadError::MappingKeyMustBeScalar(m) => {
            (Some(*m), "mapping keys must be plain strings".into())
        }
        LoadError::UnexpectedTag(m) => (Some(*m), "YAML tags are not supported".into()),
        LoadError::ScanError(m, e) => (Some(*m), format!("YAML syntax error: {}", e.info())),
        LoadError::DuplicateKey(d) => (
            d.key.span().start().copied(),
            format!("duplicate key '{}'", d.key.as_str()),
        ),
    };
    (mark.map_or(0, |m| m.line()), message)
}
