//! Exec matchers: binary, positional argument patterns, parent.

use std::path::PathBuf;

use agent_common::{policy::MAX_ARG_PATTERNS, MAX_WHOLE_ARG};
use marked_yaml::Spanned;

use super::Scope;
use crate::{
    model::{ArgPattern, ExecMatch, RulePath},
    raw::{items, line, OneOrMany, RawExec},
};

pub(super) fn validate(s: &mut Scope, e: &Spanned<RawExec>) -> ExecMatch {
    let binaries = e
        .binary
        .as_ref()
        .map(|b| paths(s, "binary", b))
        .unwrap_or_default();
    let parents = e
        .parent
        .as_ref()
        .map(|p| paths(s, "parent", p))
        .unwrap_or_default();
    let mut args = Vec::new();
    if let Some(a) = &e.args {
        if a.len() > MAX_ARG_PATTERNS {
            let msg = format!(
                "{} argument patterns; at most {MAX_ARG_PATTERNS} (argv[1] to argv[{MAX_ARG_PATTERNS}])",
                a.len()
            );
            s.err(line(a.span()), msg);
        }
        for p in a.iter() {
            match parse_pattern(p.as_str()) {
                Ok(p) => args.push(p),
                Err(msg) => s.err(line(p.span()), msg),
            }
        }
    }
    let m = ExecMatch {
        binaries,
        args,
        parents,
    };
    let no_args = e.args.as_ref().is_none_or(|a| a.is_empty());
    if e.binary.is_none() && e.parent.is_none() && no_args {
        s.err(
            line(e.span()),
            "this exec rule matches every exec: name a binary, args or parent \
             (or set the agent group's default exec action instead)",
        );
    }
    m
}

/// Absolute file paths, each once.
fn paths(s: &mut Scope, field: &str, v: &Spanned<OneOrMany>) -> Vec<RulePath> {
    let list = items(v);
    if list.is_empty() {
        s.err(
            line(v.span()),
            format!("{field}: [] matches nothing; omit {field} for any"),
        );
    }
    let mut out: Vec<RulePath> = Vec::new();
    for (p, l) in list {
        let bad = if p.is_empty() {
            Some(format!("{field} path is empty"))
        } else if !p.starts_with('/') {
            Some(format!(
                "{field} '{p}' must be an absolute path (like /usr/bin/{p})"
            ))
        } else if p.contains('\0') {
            Some(format!(
                "{field} '{}' contains a NUL byte",
                p.escape_debug()
            ))
        } else if p.ends_with('/') {
            Some(format!("{field} '{p}' names a directory, not a file"))
        } else {
            None
        };
        match bad {
            Some(msg) => s.err(l, msg),
            None if out.iter().any(|o| o.path.as_os_str() == p) => {}
            None => out.push(RulePath {
                path: PathBuf::from(p),
                line: l,
            }),
        }
    }
    out
}

/// `*`, or `a|b|c`: whole literal values. Globs inside a value cannot be evaluated by the
/// kernel (it compares hashes of whole arguments), so they are refused with the
/// alternatives.
pub(crate) fn parse_pattern(p: &str) -> Result<ArgPattern, String> {
    if p == "*" {
        return Ok(ArgPattern::Any);
    }
    if p.is_empty() {
        return Err("empty argument pattern: use \"*\" for any value".into());
    }
    if p.contains('\0') {
        return Err(format!(
            "argument pattern '{}' contains a NUL byte",
            p.escape_debug()
        ));
    }
    let mut literals: Vec<String> = Vec::new();
    for lit in p.split('|') {
        if lit.is_empty() {
            return Err(format!("argument pattern '{p}' has an empty alternative"));
        }
        if lit == "*" {
            return Err(format!(
                "argument pattern '{p}': \"*\" cannot be an alternative; write \"*\" alone for any value"
            ));
        }
        if lit.contains('*') {
            return Err(format!(
                "argument pattern '{p}': '{lit}' is a glob, but only whole values can be matched \
                 (prefix/suffix globs are not supported in the kernel): list the values as \
                 alternatives, like \"delete|describe\", or use \"*\" for any value"
            ));
        }
        if lit.len() > MAX_WHOLE_ARG {
            return Err(format!(
                "argument pattern alternative '{lit}' is {} bytes long; the kernel compares \
                 arguments of at most {} bytes",
                lit.len(),
                MAX_WHOLE_ARG
            ));
        }
        if !literals.iter().any(|l| l == lit) {
            literals.push(lit.to_owned());
        }
    }
    Ok(ArgPattern::OneOf(literals))
}
