//! A request as a Block Kit message. Text chosen by the agent (argv, reason, session names)
//! only ever goes into `plain_text` objects, so it cannot mention, link or format anything.

use std::time::SystemTime;

use serde_json::{json, Value};

use crate::chat::view::{short_duration, RequestView};

/// `action_id`s of the buttons, and the block ids the click parser reads.
pub const APPROVE_ONCE: &str = "approve_once";
/// The "Approve for…" select; option values are `REQUEST|SECONDS`.
pub const APPROVE_FOR: &str = "approve_for";
/// The Deny button; the reason comes from the input block.
pub const DENY: &str = "deny";
/// Block and action id of the reason input.
pub const REASON_BLOCK: &str = "countersign_reason";
/// Action id of the reason input.
pub const REASON_INPUT: &str = "reason";

/// Longest text of one field (Slack allows 2000 per field).
const FIELD: usize = 1900;

fn plain(text: &str) -> Value {
    json!({ "type": "plain_text", "text": cut(text, FIELD), "emoji": false })
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut s: String = text.chars().take(max - 1).collect();
    s.push('…');
    s
}

/// Fallback text (notifications) and blocks of `view` at `now`.
pub fn message(view: &RequestView, now: SystemTime) -> (String, Value) {
    let r = &view.request;
    let title = if view.is_open(now) {
        format!("Approval needed: {} on {}", view.kind(), r.host)
    } else {
        format!("{} on {}: {}", view.kind(), r.host, r.state.as_str())
    };
    let mut fields = vec![
        plain(&format!("Who: {}", view.who())),
        plain(&format!("What: {}", view.what())),
        plain(&format!("Rule: {}", view.rule())),
        plain(&format!("Attempts: {}", view.attempts())),
    ];
    if let Some(reason) = view.reason() {
        fields.push(plain(&format!("Agent's reason: {reason}")));
    }
    if let Some(p) = view.progress() {
        fields.push(plain(&format!("Approvals: {p}")));
    }
    let mut blocks = vec![
        json!({ "type": "header", "text": plain(&cut(&title, 150)) }),
        json!({ "type": "section", "fields": fields }),
        json!({ "type": "context", "elements": [plain(&format!("Request {} · expires {}", r.id, view.expires()))] }),
    ];
    match view.outcome() {
        Some(outcome) => blocks.push(json!({ "type": "section", "text": plain(&outcome) })),
        None if view.is_open(now) => {
            blocks.push(json!({
                "type": "input",
                "block_id": REASON_BLOCK,
                "optional": true,
                "label": plain("Reason (for Deny)"),
                "element": { "type": "plain_text_input", "action_id": REASON_INPUT, "max_length": 500 }
            }));
            let mut elements = vec![json!({
                "type": "button", "action_id": APPROVE_ONCE, "style": "primary",
                "text": plain("Approve once"), "value": r.id
            })];
            let options: Vec<Value> = view
                .durations()
                .into_iter()
                .map(|d| json!({ "text": plain(&short_duration(d)), "value": format!("{}|{}", r.id, d.as_secs()) }))
                .collect();
            if !options.is_empty() {
                elements.push(json!({
                    "type": "static_select", "action_id": APPROVE_FOR,
                    "placeholder": plain("Approve for…"), "options": options
                }));
            }
            elements.push(json!({
                "type": "button", "action_id": DENY, "style": "danger",
                "text": plain("Deny"), "value": r.id
            }));
            blocks.push(json!({ "type": "actions", "block_id": "countersign_actions", "elements": elements }));
        }
        None => blocks.push(json!({ "type": "section", "text": plain("Expired undecided") })),
    }
    let text = format!("{title}: {} ({})", cut(&view.what(), 200), r.id);
    (escape_mrkdwn(&text), Value::Array(blocks))
}

/// `text` for a field Slack reads as mrkdwn (a message's fallback `text`): `&`, `<` and `>`
/// as the entities Slack asks for, so that no mention (`<!channel>`), link or user reference
/// comes out of agent-chosen text.
pub fn escape_mrkdwn(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
