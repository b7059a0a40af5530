//! Turning long daemon logs into failure messages a person can read.

/// Lines kept from the end of the daemon's stderr.
const STDERR_TAIL: usize = 30;
/// Longest line shown (verifier logs have very long ones).
const LINE_MAX: usize = 300;

/// Warnings and errors from anywhere in `text` (a verifier log can push the one line that
/// matters far from the end), then its last lines.
pub fn stderr_summary(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let tail_from = lines.len().saturating_sub(STDERR_TAIL);
    let notable = lines[..tail_from].iter().filter(|l| {
        ["WARN", "ERROR", "panicked"].iter().any(|k| l.contains(k))
            || l.starts_with("countersign-agent:")
            || l.starts_with("Error:")
    });
    let mut out = String::new();
    for (i, l) in notable.enumerate() {
        if i == 20 {
            out.push_str("  [more warnings and errors cut]\n");
            break;
        }
        out.push_str(&format!("  {}\n", shorten(l)));
    }
    if tail_from > 0 {
        out.push_str(&format!("  [… {tail_from} lines …]\n"));
    }
    for l in &lines[tail_from..] {
        out.push_str(&format!("  {}\n", shorten(l)));
    }
    out
}

fn shorten(line: &str) -> String {
    match line.char_indices().nth(LINE_MAX) {
        Some((cut, _)) => format!("{} [cut]", &line[..cut]),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_early_errors_and_the_tail() {
        let mut text = String::from("countersign-agent: program x: verifier said no\n");
        for i in 0..100 {
            text.push_str(&format!("{i}: (bf) r1 = r2\n"));
        }
        let summary = stderr_summary(&text);
        assert!(summary.contains("verifier said no"), "{summary}");
        assert!(summary.contains("99: (bf)"), "{summary}");
        assert!(!summary.contains("\n  5: (bf)"), "{summary}");
    }

    #[test]
    fn shortens_long_lines() {
        assert!(shorten(&"x".repeat(1000)).ends_with(" [cut]"));
        assert_eq!(shorten("short"), "short");
    }
}
