//! A request as an Adaptive Card (1.4, the first version with `Action.Execute`).
//!
//! Text chosen by the agent (argv, reason, session names) only goes into `TextRun`s of
//! `RichTextBlock`s, which Adaptive Cards never read as Markdown; the one `TextBlock` with
//! view text (the title) has its Markdown characters escaped. While the request is open the
//! bot's card has a reason box, a duration choice and `Action.Execute` buttons whose `data`
//! carries the request id (Teams merges the inputs into it); closed, it shows the outcome and
//! no actions.

use std::time::SystemTime;

use serde_json::{json, Value};

use crate::chat::view::{short_duration, RequestView};

/// Content type of an Adaptive Card attachment (and of a card invoke response).
pub const CONTENT_TYPE: &str = "application/vnd.microsoft.card.adaptive";
/// `verb`s of the buttons.
pub const APPROVE_ONCE: &str = "approve_once";
/// "Approve for…", with the duration input.
pub const APPROVE_FOR: &str = "approve_for";
/// "Deny", with the reason input.
pub const DENY: &str = "deny";
/// Input ids (keys of the action's `data`).
pub const REASON: &str = "reason";
/// Seconds of "Approve for…".
pub const DURATION: &str = "duration";

/// Longest text of one element (Teams refuses cards over about 28 KB in all).
const FIELD: usize = 2000;

/// What the card offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Actions {
    /// Buttons while the request is open (the bot's card).
    Execute,
    /// None, with a line saying where to decide (a webhook's card: Workflows cannot call
    /// back).
    NotifyOnly,
}

/// The card of `view` at `now`.
pub fn card(view: &RequestView, now: SystemTime, actions: Actions) -> Value {
    let r = &view.request;
    let open = view.is_open(now);
    let mut body = vec![json!({
        "type": "TextBlock", "text": escape_markdown(&title(view, now)),
        "weight": "Bolder", "size": "Medium", "wrap": true
    })];
    body.push(fact("Who", &view.who()));
    body.push(fact("What", &view.what()));
    body.push(fact("Rule", &view.rule()));
    body.push(fact("Attempts", &view.attempts()));
    if let Some(reason) = view.reason() {
        body.push(fact("Agent's reason", &reason));
    }
    if let Some(p) = view.progress() {
        body.push(fact("Approvals", &p));
    }
    let id_line = format!("Request {} · expires {}", r.id, view.expires());
    body.push(rich(vec![note(&id_line)]));
    let mut buttons = Vec::new();
    match view.outcome() {
        Some(outcome) => body.push(rich(vec![bold(&outcome)])),
        None if open && actions == Actions::Execute => {
            body.push(json!({
                "type": "Input.Text", "id": REASON, "label": "Reason (for Deny)",
                "placeholder": "Why not?", "maxLength": 500, "isMultiline": false
            }));
            let durations = view.durations();
            if let Some(first) = durations.first() {
                let choices: Vec<Value> = durations
                    .iter()
                    .map(|d| json!({ "title": short_duration(*d), "value": d.as_secs().to_string() }))
                    .collect();
                body.push(json!({
                    "type": "Input.ChoiceSet", "id": DURATION, "label": "Duration (for Approve for…)",
                    "style": "compact", "isRequired": false,
                    "value": first.as_secs().to_string(), "choices": choices
                }));
            }
            let data = json!({ "request_id": r.id });
            buttons.push(execute("Approve once", APPROVE_ONCE, &data, "positive"));
            if !durations.is_empty() {
                buttons.push(execute("Approve for…", APPROVE_FOR, &data, "default"));
            }
            buttons.push(execute("Deny", DENY, &data, "destructive"));
        }
        None if open => body.push(rich(vec![run(
            "Decide with the Countersign CLI (countersign approve / deny), or where the \
             Countersign bot posts requests (Slack, Teams).",
        )])),
        None => body.push(rich(vec![bold("Expired undecided")])),
    }
    json!({
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.4",
        "body": body,
        "actions": buttons,
    })
}

/// One line for notifications and accessibility (an activity's `summary`).
pub fn summary(view: &RequestView, now: SystemTime) -> String {
    format!(
        "{}: {} ({})",
        title(view, now),
        cut(&view.what(), 200),
        view.request.id
    )
}

fn title(view: &RequestView, now: SystemTime) -> String {
    let r = &view.request;
    let title = if view.is_open(now) {
        format!("Approval needed: {} on {}", view.kind(), r.host)
    } else {
        format!("{} on {}: {}", view.kind(), r.host, r.state.as_str())
    };
    cut(&title, 150)
}

fn execute(title: &str, verb: &str, data: &Value, style: &str) -> Value {
    json!({ "type": "Action.Execute", "title": title, "verb": verb, "data": data, "style": style })
}

/// "Label: value" with the label bold and the value a plain run.
fn fact(label: &str, value: &str) -> Value {
    rich(vec![bold(&format!("{label}: ")), run(value)])
}

fn rich(inlines: Vec<Value>) -> Value {
    json!({ "type": "RichTextBlock", "inlines": inlines })
}

/// A `TextRun`: shown as it is, never read as Markdown.
fn run(text: &str) -> Value {
    json!({ "type": "TextRun", "text": cut(text, FIELD) })
}

/// A small, subtle `TextRun`.
fn note(text: &str) -> Value {
    json!({ "type": "TextRun", "text": cut(text, FIELD), "size": "Small", "isSubtle": true })
}

fn bold(text: &str) -> Value {
    json!({ "type": "TextRun", "text": cut(text, FIELD), "weight": "Bolder" })
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut s: String = text.chars().take(max - 1).collect();
    s.push('…');
    s
}

/// `text` with every character a `TextBlock`'s Markdown reads backslash-escaped.
pub fn escape_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\`*_{}[]()<>#+-.!|~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::chat::corpus::view;
    use crate::store::RequestState;

    fn actions(card: &Value) -> Vec<String> {
        card["actions"]
            .as_array()
            .expect("actions")
            .iter()
            .map(|a| format!("{} {}", a["type"], a["verb"]))
            .collect()
    }

    #[test]
    fn an_open_request_has_execute_actions_and_inputs() {
        let v = view(RequestState::Pending);
        let card = card(&v, SystemTime::now(), Actions::Execute);
        assert_eq!(card["version"], "1.4");
        assert_eq!(
            actions(&card),
            [
                "\"Action.Execute\" \"approve_once\"",
                "\"Action.Execute\" \"approve_for\"",
                "\"Action.Execute\" \"deny\""
            ]
        );
        assert_eq!(card["actions"][0]["data"]["request_id"], "r-0123456789");
        let text = card.to_string();
        assert!(text.contains("\"id\":\"reason\""), "{text}");
        // 5m and the rule's longest grant, 10m.
        assert!(text.contains("\"value\":\"300\"") && text.contains("\"value\":\"600\""));
        assert!(!text.contains("\"value\":\"900\""), "{text}");
    }

    #[test]
    fn a_closed_request_has_its_outcome_and_no_actions() {
        let v = view(RequestState::Denied);
        let card = card(&v, SystemTime::now(), Actions::Execute);
        assert!(actions(&card).is_empty());
        let text = card.to_string();
        assert!(text.contains("Denied by alice via teams"), "{text}");
        assert!(!text.contains("Input."), "{text}");
    }

    #[test]
    fn a_webhook_card_says_where_to_decide() {
        let v = view(RequestState::Pending);
        let card = card(&v, SystemTime::now(), Actions::NotifyOnly);
        assert!(actions(&card).is_empty());
        assert!(card.to_string().contains("Decide with the Countersign CLI"));
    }

    #[test]
    fn agent_text_is_never_markdown() {
        let v = view(RequestState::Pending);
        let card = card(&v, SystemTime::now(), Actions::Execute);
        for block in card["body"].as_array().expect("body") {
            match block["type"].as_str() {
                Some("RichTextBlock") => {
                    for inline in block["inlines"].as_array().expect("inlines") {
                        assert_eq!(inline["type"], "TextRun", "{inline}");
                    }
                }
                Some("TextBlock") => {
                    let text = block["text"].as_str().expect("text");
                    assert_eq!(text, "Approval needed: exec on web\\_01");
                }
                _ => {}
            }
        }
        assert!(card
            .to_string()
            .contains("**urgent** [click](https://evil.example) <at>everyone</at>"));
        assert_eq!(escape_markdown("a*b_[c](d)"), r"a\*b\_\[c\]\(d\)");
    }
}
