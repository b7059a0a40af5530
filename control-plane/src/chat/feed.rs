//! Following the store's decision events (of every host) and showing each changed request
//! in the chats: posted once in each conversation of its approver groups while it is open,
//! updated in place on every change (attempts, approval, denial, expiry, revocation).
//!
//! Every replica follows the feed from where it started; the post of a message is claimed in
//! the store (one replica posts it), updates are idempotent. A post that fails is retried
//! every [`RETRY`] while the request stays open. An agent retrying in a loop makes a refusal
//! storm: a request's message is updated for new attempts at most every [`ATTEMPTS_EVERY`]
//! (decisions, expiries and revocations show at once), so that the chats' rate limits are
//! spent on new requests and outcomes.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::view::RequestView;
use super::{Bridge, ChatError, Integration};
use crate::rpc::pb::decision_event::Event;
use crate::store::{Store, StoreError};

/// How often the feed is read when no local commit woke it (other replicas' events).
pub const POLL: Duration = Duration::from_millis(500);
/// How long a failed post waits before it is tried again.
pub const RETRY: Duration = Duration::from_secs(5);
/// Least time between two updates of one message for new attempts only.
pub const ATTEMPTS_EVERY: Duration = Duration::from_secs(3);

/// Follows the feed until `stopping` turns true.
pub async fn follow(bridge: Bridge, mut stopping: watch::Receiver<bool>) {
    let mut wake = bridge.store.subscribe();
    let mut cursor = loop {
        match bridge.store.decision_feed_head().await {
            Ok(head) => break head,
            Err(e) => {
                tracing::warn!(error = %e, "chat feed: cannot read the decision events; retrying");
                tokio::time::sleep(RETRY).await;
            }
        }
    };
    let mut retry: BTreeSet<String> = BTreeSet::new();
    let mut last_retry = Instant::now();
    let mut pace = Pace::default();
    loop {
        let mut work = BTreeSet::new();
        match bridge.store.decision_feed(cursor, 200).await {
            Ok(events) => {
                for (id, event) in events {
                    cursor = id;
                    let attempts_only = matches!(event.event, Some(Event::Opened(_)));
                    if let Some(request) = request_of(&bridge.store, event.event).await {
                        if attempts_only && pace.defer(&request) {
                            continue;
                        }
                        work.insert(request);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "chat feed: reading decision events failed");
            }
        }
        work.extend(pace.due());
        if last_retry.elapsed() >= RETRY {
            last_retry = Instant::now();
            work.extend(std::mem::take(&mut retry));
        }
        let busy = !work.is_empty();
        for id in work {
            pace.shown(&id);
            if let Err(e) = show_everywhere(&bridge, &id).await {
                tracing::warn!(request = %id, error = %e, "chat feed: could not show the request; will retry");
                retry.insert(id);
            }
        }
        if busy {
            continue;
        }
        tokio::select! {
            _ = wake.recv() => {}
            () = tokio::time::sleep(POLL) => {}
            _ = stopping.changed() => {}
        }
        if *stopping.borrow() {
            return;
        }
    }
}

/// When each request was last shown, and the ones whose attempts wait for their turn.
#[derive(Default)]
struct Pace {
    last: HashMap<String, Instant>,
    deferred: BTreeSet<String>,
}

impl Pace {
    /// Whether an attempts-only change of `id` must wait (it is then remembered).
    fn defer(&mut self, id: &str) -> bool {
        let recent = self
            .last
            .get(id)
            .is_some_and(|t| t.elapsed() < ATTEMPTS_EVERY);
        if recent {
            self.deferred.insert(id.to_owned());
        }
        recent
    }

    /// Deferred requests whose turn came.
    fn due(&mut self) -> Vec<String> {
        let ready: Vec<String> = self
            .deferred
            .iter()
            .filter(|id| {
                self.last
                    .get(*id)
                    .is_none_or(|t| t.elapsed() >= ATTEMPTS_EVERY)
            })
            .cloned()
            .collect();
        for id in &ready {
            self.deferred.remove(id);
        }
        ready
    }

    /// Notes that `id` is being shown now (and forgets requests not shown for a while).
    fn shown(&mut self, id: &str) {
        self.deferred.remove(id);
        self.last.insert(id.to_owned(), Instant::now());
        if self.last.len() > 10_000 {
            self.last.retain(|_, t| t.elapsed() < ATTEMPTS_EVERY);
        }
    }
}

/// The request an event is about.
async fn request_of(store: &Store, event: Option<Event>) -> Option<String> {
    match event? {
        Event::Opened(o) => Some(o.request_id),
        Event::Closed(c) => Some(c.request_id),
        Event::Grant(g) => Some(g.request_id),
        Event::Revocation(r) => store
            .get_grant(&r.grant_id)
            .await
            .ok()
            .flatten()
            .map(|g| g.request_id),
    }
}

async fn show_everywhere(bridge: &Bridge, id: &str) -> Result<(), ChatError> {
    let view = RequestView::load(&bridge.store, id)
        .await
        .map_err(store_error)?;
    let Some(view) = view else { return Ok(()) };
    let mut failed = None;
    for integration in &bridge.integrations {
        if let Err(e) = show(&bridge.store, integration.as_ref(), &view).await {
            failed = Some(ChatError(format!("{}: {e}", integration.chat())));
        }
    }
    failed.map_or(Ok(()), Err)
}

fn store_error(e: StoreError) -> ChatError {
    ChatError(format!("store: {e}"))
}

/// Shows `view` in one chat: updates its posted messages; while the request is open, posts
/// it where it is not yet (claiming each post in the store).
pub async fn show(
    store: &Store,
    integration: &dyn Integration,
    view: &RequestView,
) -> Result<(), ChatError> {
    let chat = integration.chat();
    let id = &view.request.id;
    let posted = store.chat_messages(id, chat).await.map_err(store_error)?;
    let mut failed = None;
    for m in &posted {
        if let Err(e) = integration.update(m, view).await {
            failed = Some(e);
        }
    }
    let now = crate::store::now();
    if !view.is_open(now) {
        return failed.map_or(Ok(()), Err);
    }
    for target in integration.targets(view) {
        if posted.iter().any(|m| m.target == target) {
            continue;
        }
        if !store
            .claim_chat_message(id, chat, &target, now)
            .await
            .map_err(store_error)?
        {
            continue;
        }
        match integration.post(&target, view).await {
            Ok(p) => {
                let row = crate::store::MessageRow {
                    request_id: id.clone(),
                    channel: chat.to_owned(),
                    target: target.clone(),
                    message_ref: p.message_ref,
                    extra: p.extra,
                };
                store.set_chat_message(&row).await.map_err(store_error)?;
                tracing::info!(chat, request = %id, %target, "request posted");
                // A decision may have landed while posting: show it.
                if let Ok(Some(now_view)) = RequestView::load(store, id).await {
                    if now_view.request.state != view.request.state {
                        integration.update(&row, &now_view).await?;
                    }
                }
            }
            Err(e) => {
                let _ = store.release_chat_message(id, chat, &target).await;
                failed = Some(e);
            }
        }
    }
    failed.map_or(Ok(()), Err)
}
