//! YAML text → raw structs, with the line of every item.
//!
//! YAML crate: `marked-yaml` (built on `yaml-rust2`, the maintained pure-Rust YAML 1.2
//! parser) deserializes through serde into `Spanned<T>` values that carry line and column, so
//! the raw structs keep `deny_unknown_fields` and every field knows its line; serde_yaml 0.9 is
//! unmaintained and has no spans, and saphyr's marked nodes would need a hand-written serde
//! bridge. Anchors, aliases and tags are refused by the loader, which suits a security policy.

use std::sync::Arc;

use marked_yaml::{from_node, parse_yaml_with_options, LoadError, LoaderOptions, Marker, Node};

use crate::{
    error::{PolicyError, Subject},
    raw::{line, RawAgent, RawRule, Str},
};

/// One file as written.
pub(crate) struct RawFile {
    pub file: Arc<str>,
    pub version: Option<Str>,
    pub agents: Vec<Item<RawAgent>>,
    pub rules: Vec<Item<RawRule>>,
}

/// An element of `agents` or `rules` and the line it starts on.
pub(crate) struct Item<T> {
    pub line: usize,
    pub raw: T,
}

/// Parses one file. Syntax errors stop at the first; schema errors are reported per agent
/// group and per rule (the offending item is left out, the others are kept).
pub(crate) fn parse(file: &Arc<str>, text: &str, errors: &mut Vec<PolicyError>) -> Option<RawFile> {
    if let Err((line, message)) = single_document(text) {
        errors.push(PolicyError::at(file, line, None, message));
        return None;
    }
    let options = LoaderOptions::default().error_on_duplicate_keys(true);
    let mut root = match parse_yaml_with_options(0, text, options) {
        Ok(node) => node,
        Err(e) => {
            errors.push(syntax_error(file, &e));
            return None;
        }
    };
    fix_spans(&mut root);
    let mut out = RawFile {
        file: file.clone(),
        version: None,
        agents: vec![],
        rules: vec![],
    };
    let Some(top) = root.as_mapping() else {
        let msg = "the file must be a mapping with version, agents and rules".to_owned();
        errors.push(PolicyError::at(file, 1, None, msg));
        return None;
    };
    for (key, value) in top.iter() {
        let key_line = line(key.span());
        match key.as_str() {
            "version" => match from_node::<Str>(value) {
                Ok(v) => out.version = Some(v),
                Err(e) => errors.push(PolicyError::at(
                    file,
                    key_line,
                    None,
                    format!("version: {e}"),
                )),
            },
            "agents" => {
                for (node, line) in list(file, "agents", key_line, value, errors) {
                    let subject = subject(node, "name", Subject::Agent);
                    match from_node::<RawAgent>(node) {
                        Ok(raw) => out.agents.push(Item { line, raw }),
                        Err(e) => errors.push(schema_error(file, node, subject, &e)),
                    }
                }
            }
            "rules" => {
                for (node, line) in list(file, "rules", key_line, value, errors) {
                    let subject = subject(node, "id", Subject::Rule);
                    match from_node::<RawRule>(node) {
                        Ok(raw) => out.rules.push(Item { line, raw }),
                        Err(e) => errors.push(schema_error(file, node, subject, &e)),
                    }
                }
            }
            other => {
                let msg = format!("unknown key '{other}' (expected version, agents, rules)");
                errors.push(PolicyError::at(file, key_line, None, msg));
            }
        }
    }
    Some(out)
}

/// The elements of a top-level list with their lines; an empty value is an empty list.
fn list<'a>(
    file: &Arc<str>,
    name: &str,
    key_line: usize,
    value: &'a Node,
    errors: &mut Vec<PolicyError>,
) -> Vec<(&'a Node, usize)> {
    match value {
        Node::Sequence(items) => items.iter().map(|n| (n, line(n.span()))).collect(),
        Node::Scalar(s) if s.as_str().is_empty() => vec![],
        _ => {
            errors.push(PolicyError::at(
                file,
                key_line,
                None,
                format!("{name} must be a list"),
            ));
            vec![]
        }
    }
}

/// The name or id of an item whose schema is wrong, so that the error can still name it.
fn subject(node: &Node, key: &str, make: fn(String) -> Subject) -> Option<Subject> {
    let value = node.as_mapping()?.get_scalar(key)?;
    Some(make(value.as_str().to_owned()))
}

fn schema_error(
    file: &Arc<str>,
    item: &Node,
    subject: Option<Subject>,
    e: &marked_yaml::FromNodeError,
) -> PolicyError {
    let line = unknown_key_line(item, e)
        .or(e.start_mark().map(|m| m.line()))
        .unwrap_or_else(|| line(item.span()));
    PolicyError::at(file, line, subject, e.to_string())
}

/// The line of an unknown key. marked-yaml points such errors at the enclosing mapping when
/// it sits in a `Spanned` field; the error's path (`exec.bianry`) leads to the key itself.
fn unknown_key_line(item: &Node, e: &marked_yaml::FromNodeError) -> Option<usize> {
    let marked_yaml::Error::UnknownFieldError(field, ..) = &**e else {
        return None;
    };
    let path = e.path().unwrap_or_default();
    let mut segments: Vec<&str> = path.split('.').filter(|s| !s.is_empty()).collect();
    if segments.last() == Some(&field.as_str()) {
        segments.pop();
    }
    let mut node = item;
    for seg in segments {
        let mut parts = seg.split('[');
        node = node.as_mapping()?.get_node(parts.next()?)?;
        for index in parts {
            node = node
                .as_sequence()?
                .get_node(index.trim_end_matches(']').parse().ok()?)?;
        }
    }
    let key = node.as_mapping()?.keys().find(|k| k.as_str() == field)?;
    Some(line(key.span()))
}

fn syntax_error(file: &Arc<str>, e: &LoadError) -> PolicyError {
    let (mark, message) = match e {
        LoadError::TopLevelMustBeMapping(m) | LoadError::TopLevelMustBeSequence(m) => (
            *m,
            "the file must be a mapping with version, agents and rules".to_owned(),
        ),
        LoadError::UnexpectedAnchor(m) => (*m, "YAML anchors and aliases are not supported".into()),
        LoadError::MappingKeyMustBeScalar(m) => (*m, "mapping keys must be plain strings".into()),
        LoadError::UnexpectedTag(m) => (*m, "YAML tags are not supported".into()),
        LoadError::ScanError(m, e) => (*m, format!("YAML syntax error: {}", e.info())),
        LoadError::DuplicateKey(d) => {
            let first = d.prev_key.span().start().map_or(0, |m| m.line());
            let mark = d
                .key
                .span()
                .start()
                .copied()
                .unwrap_or(Marker::new(0, 0, 1, 1));
            (
                mark,
                format!("duplicate key '{}' (first at line {first})", d.key.as_str()),
            )
        }
    };
    PolicyError {
        file: file.clone(),
        line: Some(mark.line()),
        column: Some(mark.column()),
        subject: None,
        message,
    }
}

/// Several documents in one file would be silently dropped by the loader (it keeps the
/// first), so they are refused: a policy must never lose rules without saying so. Document
/// markers only count at column 0, where YAML allows them.
fn single_document(text: &str) -> Result<(), (usize, String)> {
    let mut content = false;
    let mut ended = false;
    for (i, l) in text.lines().enumerate() {
        let start = marker(l, "---");
        let end = marker(l, "...");
        let has_content = match (start || end, l.get(3..)) {
            (true, Some(rest)) => is_content(rest),
            (true, None) => false,
            (false, _) => is_content(l) && !l.starts_with('%'),
        };
        let second_start = start && (content || ended);
        let after_end = ended && has_content;
        if second_start || after_end {
            let msg =
                "several YAML documents in one file are not supported: put each in its own file";
            return Err((i + 1, msg.to_owned()));
        }
        ended |= end;
        content |= has_content;
    }
    Ok(())
}

/// A document marker (`---` or `...`) at column 0, alone or followed by a blank.
fn marker(line: &str, m: &str) -> bool {
    line.strip_prefix(m)
        .is_some_and(|r| r.is_empty() || r.starts_with([' ', '\t']))
}

fn is_content(s: &str) -> bool {
    let t = s.trim();
    !t.is_empty() && !t.starts_with('#')
}

/// The loader marks a block mapping at its first value; an error about a mapping, list or
/// empty value reads best at the key that introduces it. Children first, then their key.
fn fix_spans(node: &mut Node) {
    match node {
        Node::Mapping(m) => {
            if let Some(first) = m.keys().next().and_then(|k| k.span().start().copied()) {
                m.span_mut().set_start(Some(first));
            }
            for (k, v) in m.iter_mut() {
                fix_spans(v);
                let blank = matches!(v, Node::Scalar(s) if s.as_str().is_empty());
                if blank || !matches!(v, Node::Scalar(_)) {
                    v.span_mut().set_start(k.span().start().copied());
                }
            }
        }
        Node::Sequence(s) => s.iter_mut().for_each(fix_spans),
        Node::Scalar(_) => {}
    }
}
