//! What the chat bridges keep: links, one claimed post per request and conversation,
//! replay digests, the store-wide feed.

use std::time::{Duration, SystemTime};

use control_plane::store::{LinkRow, MessageRow, StoreError};

use crate::db::Db;
use crate::on_both;
use crate::support::{refusal, spec, t0};

fn link(id: &str, person: &str) -> LinkRow {
    LinkRow {
        channel: "slack".into(),
        external_id: id.into(),
        person: person.into(),
        linked_by: "erin".into(),
        linked_at: t0(),
        confirmed_by: String::new(),
    }
}

on_both!(links_claims_replays_and_the_feed);
async fn links_claims_replays_and_the_feed(db: &Db) {
    let store = db.open().await;
    store
        .link_chat(&link("U1", "alice"), "cli")
        .await
        .expect("link");
    store
        .link_chat(&link("U1", "bob"), "cli")
        .await
        .expect("relink");
    store
        .link_chat(&link("U2", "carol"), "cli")
        .await
        .expect("link");
    // An admin's link acts as nobody until its person confirms it; only that person can.
    assert_eq!(
        store.linked_person("slack", "U1").await.expect("read"),
        None
    );
    assert!(matches!(
        store
            .confirm_chat_link("slack", "U1", "alice", "cli", t0())
            .await,
        Err(StoreError::NotFound(_))
    ));
    let confirmed = store
        .confirm_chat_link("slack", "U1", "bob", "cli", t0())
        .await
        .expect("confirm");
    assert_eq!(confirmed.confirmed_by, "bob");
    assert!(matches!(
        store
            .confirm_chat_link("slack", "U1", "bob", "cli", t0())
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store
            .linked_person("slack", "U1")
            .await
            .expect("read")
            .as_deref(),
        Some("bob")
    );
    assert_eq!(
        store.linked_person("teams", "U1").await.expect("read"),
        None
    );
    assert_eq!(store.chat_links(None).await.expect("all").len(), 2);
    assert_eq!(
        store.chat_links(Some("teams")).await.expect("teams").len(),
        0
    );
    let gone = store
        .unlink_chat("slack", "U1", "erin", "cli", t0())
        .await
        .expect("unlink");
    assert_eq!(gone.person, "bob");
    assert!(matches!(
        store.unlink_chat("slack", "U1", "erin", "cli", t0()).await,
        Err(StoreError::NotFound(_))
    ));

    // One claim per (request, chat, conversation); a failed post gives it back; a claim left
    // unposted by a dead replica is taken over after the timeout.
    assert!(store
        .claim_chat_message("r-1", "slack", "C1", t0())
        .await
        .expect("claim"));
    assert!(!store
        .claim_chat_message("r-1", "slack", "C1", t0())
        .await
        .expect("second"));
    assert!(store
        .claim_chat_message("r-1", "slack", "C2", t0())
        .await
        .expect("other target"));
    store
        .release_chat_message("r-1", "slack", "C2")
        .await
        .expect("release");
    assert!(store
        .claim_chat_message("r-1", "slack", "C2", t0())
        .await
        .expect("again"));
    let later = t0() + Duration::from_secs(31);
    assert!(store
        .claim_chat_message("r-1", "slack", "C2", later)
        .await
        .expect("stale taken"));
    let posted = MessageRow {
        request_id: "r-1".into(),
        channel: "slack".into(),
        target: "C1".into(),
        message_ref: "1700000000.000100".into(),
        extra: String::new(),
    };
    store.set_chat_message(&posted).await.expect("set");
    assert_eq!(
        store.chat_messages("r-1", "slack").await.expect("read"),
        vec![posted]
    );
    assert!(!store
        .claim_chat_message("r-1", "slack", "C1", later)
        .await
        .expect("posted stays"));

    // Replays: the same digest twice within the window.
    let window = Duration::from_secs(600);
    assert!(store.first_sight("d1", t0(), window).await.expect("first"));
    assert!(!store
        .first_sight("d1", t0() + Duration::from_secs(1), window)
        .await
        .expect("replay"));
    assert!(store
        .first_sight("d1", t0() + Duration::from_secs(601), window)
        .await
        .expect("forgotten"));

    // The feed sees every host's decision events.
    let head = store.decision_feed_head().await.expect("head");
    let s = spec(1);
    store
        .ingest("h1", vec![refusal(1, "s-1", &s)], SystemTime::now())
        .await
        .expect("h1");
    store
        .ingest("h2", vec![refusal(1, "s-2", &s)], SystemTime::now())
        .await
        .expect("h2");
    let feed = store.decision_feed(head, 100).await.expect("feed");
    assert_eq!(feed.len(), 2, "{feed:?}");
    assert!(feed[0].0 < feed[1].0);
    assert_eq!(store.decision_feed_head().await.expect("head"), feed[1].0);
}
