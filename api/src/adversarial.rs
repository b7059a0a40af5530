//! The adversarial argv corpus: command lines an agent crafts so that the approver reads
//! another command than the one that runs — bidirectional overrides, zero-width characters,
//! newlines, terminal escapes, chat markup and mentions. Every view of a request (the CLI,
//! Slack, Teams) is tested with it: each must show `display::shell_join` of it, and none a
//! hidden character raw.

/// The nastiest argv we know, each shown to an approver.
pub const ARGVS: &[&[&str]] = &[
    &["kubectl", "delete", "pod", "web\u{202e}lo\u{202c}"],
    &["kubectl", "get", "pods\u{200b}", "--all"],
    &["kubectl", "apply", "-f", "ok.yaml\nkubectl delete ns prod"],
    &["kubectl", "\u{1b}[2K\rkubectl get pods"],
    &[
        "kubectl",
        "<!channel>",
        "<@U012AB3CD>",
        "<https://evil.example|ok>",
    ],
    &[
        "kubectl",
        "**bold**",
        "[x](https://evil.example)",
        "`code`",
        "&amp;",
    ],
    &["kubectl", "\u{2066}get\u{2069}", "\u{feff}", "it's"],
];

/// Every string in a message a channel sends (a Slack message, a Teams card), with where it
/// is (`slack.blocks[1].text.text`): what a check for hidden characters walks.
pub fn strings(v: &serde_json::Value, at: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    walk(v, at, &mut out);
    out
}

fn walk(v: &serde_json::Value, at: &str, out: &mut Vec<(String, String)>) {
    use serde_json::Value;
    match v {
        Value::String(s) => out.push((at.to_owned(), s.clone())),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| walk(x, &format!("{at}[{i}]"), out)),
        Value::Object(o) => o
            .iter()
            .for_each(|(k, x)| walk(x, &format!("{at}.{k}"), out)),
        _ => {}
    }
}
