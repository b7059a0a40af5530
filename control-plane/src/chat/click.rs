//! A button pressed in a chat, turned into a decision through the one decision path
//! ([`crate::decide::judge`] inside the store's transaction), or refused with a reply the
//! clicker sees and a `chat_refusal` audit record.
//!
//! Identity comes only from the chat's verified user id and the link an admin made
//! (`countersign people link`); names and e-mails in the payload are never read.

use std::time::Duration;

use super::view::RequestView;
use super::Bridge;
use crate::decide;
use crate::store::{ChatRefusal, RequestRow, StoreError, Verdict};

/// What the button asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClickAction {
    /// One use.
    ApproveOnce,
    /// Unlimited uses for a while (within the rule's limits).
    ApproveFor(Duration),
    /// Refuse, with the clicker's reason.
    Deny(String),
}

/// A verified click.
#[derive(Clone, Debug)]
pub struct Click {
    /// `slack` or `teams`.
    pub chat: &'static str,
    /// The chat's user id of the clicker (verified by the transport).
    pub user: String,
    /// Request id from the button's value.
    pub request_id: String,
    /// What was asked.
    pub action: ClickAction,
}

/// What the clicker is told.
#[derive(Clone, Debug)]
pub enum Reply {
    /// The decision was recorded; the message shows `view`.
    Decided {
        /// The request after the decision.
        view: RequestView,
        /// One line for the clicker ("Approved once.").
        text: String,
    },
    /// Nothing was decided; `text` says why (shown only to the clicker).
    Refused {
        /// Why.
        text: String,
        /// The request as it stands, to refresh a stale card.
        view: Option<RequestView>,
    },
}

impl Reply {
    /// The request as it now stands, when known.
    pub fn view(&self) -> Option<&RequestView> {
        match self {
            Reply::Decided { view, .. } => Some(view),
            Reply::Refused { view, .. } => view.as_ref(),
        }
    }
}

/// Decides `click`, or refuses it (with an audit record).
pub async fn decide(bridge: &Bridge, click: Click) -> Reply {
    match attempt(bridge, &click).await {
        Ok(reply) => reply,
        Err(refusal) => {
            let view = RequestView::load(&bridge.store, &click.request_id)
                .await
                .ok()
                .flatten();
            let record = ChatRefusal {
                chat: click.chat.to_owned(),
                actor: refusal.actor,
                code: refusal.code.to_owned(),
                message: refusal.text.clone(),
                request_id: view.as_ref().map(|v| v.request.id.clone()),
                chat_user: Some(click.user.clone()),
                left_out: 0,
            };
            bridge.record_refusal(&record).await;
            tracing::info!(chat = click.chat, request = %click.request_id, code = refusal.code, "chat click refused");
            Reply::Refused {
                text: refusal.text,
                view,
            }
        }
    }
}

/// A refused click before it is recorded.
struct Refusal {
    actor: String,
    code: &'static str,
    text: String,
}

async fn attempt(bridge: &Bridge, click: &Click) -> Result<Reply, Refusal> {
    let unlinked = format!("{}:{}", click.chat, click.user);
    let refuse = |actor: &str, code, text: String| Refusal {
        actor: actor.to_owned(),
        code,
        text,
    };
    let name = bridge
        .store
        .linked_person(click.chat, &click.user)
        .await
        .map_err(|e| refuse(&unlinked, "unavailable", unavailable(&e)))?
        .ok_or_else(|| {
            refuse(
                &unlinked,
                "not_linked",
                format!(
                    "Your {} account ({}) is not linked to a Countersign person, or its link \
                     awaits that person's confirmation, so it cannot decide. An admin links it \
                     with: countersign people link NAME --{} {} (and NAME confirms with the same \
                     command)",
                    click.chat, click.user, click.chat, click.user
                ),
            )
        })?;
    let Some(person) = bridge.people.get(&name).cloned() else {
        return Err(refuse(
            &name,
            "not_a_person",
            format!("Your account is linked to '{name}', who is not in the server's people file."),
        ));
    };
    let verdict = match &click.action {
        ClickAction::ApproveOnce => Verdict::ApproveOnce,
        // Uses are filled in from the rule once the request is read (below).
        ClickAction::ApproveFor(d) => Verdict::ApproveFor {
            duration: *d,
            uses: 0,
        },
        ClickAction::Deny(reason) if reason.trim().is_empty() => {
            return Err(refuse(
                &name,
                "invalid",
                "Type a reason in the box first, then press Deny.".into(),
            ))
        }
        ClickAction::Deny(reason) => Verdict::Deny {
            reason: reason.trim().chars().take(500).collect(),
        },
    };
    let chat = click.chat;
    // Uses are not asked in a chat: "approve for" takes as many as the rule allows.
    let verdict = move |row: &RequestRow| match verdict {
        Verdict::ApproveFor { duration, .. } => Verdict::ApproveFor {
            duration,
            uses: row.spec.max_grant_uses,
        },
        other => other,
    };
    let decided = decide::flow::decide(
        &bridge.store,
        &person,
        chat,
        &click.request_id,
        verdict,
        crate::store::now(),
    )
    .await
    .map_err(|e| {
        let (code, text) = explain(&e);
        refuse(&name, code, text)
    })?;
    if decided.repeated {
        return Err(refuse(
            &name,
            "already_decided",
            format!(
                "You already decided this request: {} at {}. Nothing changed.",
                decide::describe(&decided.decision.verdict),
                decide::when(decided.decision.time)
            ),
        ));
    }
    let text = format!(
        "You {} request {}.",
        decide::describe(&decided.decision.verdict),
        decided.request.id
    );
    let view = RequestView {
        request: decided.request,
        decisions: bridge
            .store
            .decisions_of(&click.request_id)
            .await
            .unwrap_or_else(|_| vec![decided.decision.clone()]),
        grant: decided.grant,
    };
    Ok(Reply::Decided { view, text })
}

/// The refusal code and text of a failed decision.
fn explain(e: &StoreError) -> (&'static str, String) {
    match e {
        StoreError::Refused(refusal) => (refusal.audit_code(), capitalized(&refusal.to_string())),
        StoreError::Precondition(m) => ("already_decided", capitalized(m)),
        StoreError::NotFound(m) => ("unknown_request", capitalized(m)),
        other => ("unavailable", unavailable(other)),
    }
}

fn unavailable(e: &StoreError) -> String {
    tracing::warn!(error = %e, "chat click: store unavailable");
    "The Countersign server could not record your decision (its database is unavailable); \
     try again in a moment."
        .to_owned()
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
