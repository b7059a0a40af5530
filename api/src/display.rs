//! Showing strings an agent chose (argv, session names, reasons) to a person without letting
//! them rewrite what the person reads: control characters, zero-width characters and
//! bidirectional overrides are escaped, and argv is shell-quoted so that what is shown is
//! exactly what ran. One function for every channel — the CLI, MCP, Slack and Teams — so an
//! approver reads the same text wherever they decide (each chat then escapes its own markup).

use std::borrow::Cow;
use std::fmt::Write as _;

/// Characters that would move the cursor, recolour, clear the screen or reorder the text
/// around them ("Trojan Source") if printed raw.
pub fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200b}'..='\u{200f}'   // zero-width spaces/joiners, LRM/RLM
            | '\u{202a}'..='\u{202e}' // embeddings and overrides
            | '\u{2066}'..='\u{2069}' // isolates
            | '\u{feff}')
}

fn escape(c: char, out: &mut String) {
    let _ = match c {
        '\n' => write!(out, "\\n"),
        '\t' => write!(out, "\\t"),
        '\r' => write!(out, "\\r"),
        c if u32::from(c) < 0x100 => write!(out, "\\x{:02x}", u32::from(c)),
        c => write!(out, "\\u{:04x}", u32::from(c)),
    };
}

/// `s` with hidden characters written as escapes (`\x1b`, `\n`, `\u202e`).
pub fn clean(s: &str) -> Cow<'_, str> {
    if !s.chars().any(hidden) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if hidden(c) {
            escape(c, &mut out);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Like [`clean`], but keeps line breaks (a server message listing several errors).
pub fn clean_lines(s: &str) -> String {
    s.split('\n').map(clean).collect::<Vec<_>>().join("\n")
}

/// Characters a shell word may hold without quotes.
fn plain(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c)
}

/// One argument as a POSIX shell would need it typed: bare when safe, in single quotes
/// otherwise, and in bash's `$'…'` form when it holds hidden characters.
pub fn shell_word(s: &str) -> Cow<'_, str> {
    if !s.is_empty() && s.chars().all(plain) {
        return Cow::Borrowed(s);
    }
    if s.chars().any(hidden) {
        let mut out = String::from("$'");
        for c in s.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\'' => out.push_str("\\'"),
                c if hidden(c) => escape(c, &mut out),
                c => out.push(c),
            }
        }
        out.push('\'');
        return Cow::Owned(out);
    }
    Cow::Owned(format!("'{}'", s.replace('\'', r"'\''")))
}

/// argv as one shell command line.
pub fn shell_join<S: AsRef<str>>(argv: &[S]) -> String {
    let words: Vec<Cow<'_, str>> = argv.iter().map(|a| shell_word(a.as_ref())).collect();
    words.join(" ")
}

/// A request's kernel refusals of other operations of its session that opened no request of
/// their own (the open-request cap), as every view words it.
pub fn over_cap(n: u32) -> String {
    let (count, verb) = if n == 1 {
        ("1 other operation".to_owned(), "was")
    } else {
        (format!("{n} other operations"), "were")
    };
    format!("{count} of this session {verb} refused over the open-request cap, not requested")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(
            shell_join(&["kubectl", "delete", "deploy", "web"]),
            "kubectl delete deploy web"
        );
        assert_eq!(shell_join(&["rm", "-rf", "/tmp/a b"]), "rm -rf '/tmp/a b'");
        assert_eq!(shell_word(""), "''");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word("$HOME"), "'$HOME'");
        assert_eq!(shell_word("a;b"), "'a;b'");
        assert_eq!(shell_word("~"), "'~'");
        assert_eq!(shell_word("--flag=x,y"), "--flag=x,y");
        assert_eq!(shell_word("é"), "'é'");
    }

    #[test]
    fn hidden_characters_are_escaped() {
        assert_eq!(shell_word("a\x1b[31mb"), r"$'a\x1b[31mb'");
        assert_eq!(shell_word("x\n'y\\"), r"$'x\n\'y\\'");
        assert_eq!(shell_word("safe\u{202e}txt.exe"), r"$'safe\u202etxt.exe'");
        assert_eq!(clean("plain"), Cow::Borrowed("plain"));
        assert_eq!(clean("a\rb\u{7f}\u{9b}"), r"a\rb\x7f\x9b");
        assert_eq!(clean("\u{2066}x"), r"\u2066x");
        assert_eq!(clean_lines("a\nb\x1b"), "a\nb\\x1b");
    }
}
