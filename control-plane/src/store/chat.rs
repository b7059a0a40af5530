//! What the chat bridges keep: chat accounts linked to people, the message posted for each
//! request (so that it is updated in place), digests of signed callbacks already seen, and the
//! store-wide feed of decision events that tells the bridges what changed.

use std::time::{Duration, SystemTime};

use serde_json::{json, Map};
use sqlx::Row as _;

use super::writer::Writer;
use super::{codec, Store, StoreError};
use crate::audit::{Actor, ActorKind, Entry, Kind, Subject};
use crate::rpc::pb;

/// A chat account linked to a person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkRow {
    /// `slack` or `teams`.
    pub channel: String,
    /// The chat's own user id (Slack `U…`, Teams AAD object id).
    pub external_id: String,
    /// Person of the people file.
    pub person: String,
    /// Admin who linked it.
    pub linked_by: String,
    /// When.
    pub linked_at: SystemTime,
    /// The person, once they confirmed the link; empty while it awaits them. Only a confirmed
    /// link lets the account act as the person.
    pub confirmed_by: String,
}

impl LinkRow {
    /// Whether the account acts as the person.
    pub fn confirmed(&self) -> bool {
        !self.confirmed_by.is_empty()
    }
}

/// A chat message standing for a request in one conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageRow {
    /// Request shown.
    pub request_id: String,
    /// `slack`, `teams` or `teams-webhook`.
    pub channel: String,
    /// Conversation (Slack channel id, Teams conversation id, webhook name).
    pub target: String,
    /// The chat's id of the message (Slack `ts`, Teams activity id); empty while posting.
    pub message_ref: String,
    /// Anything else the integration needs to update it (Teams service URL).
    pub extra: String,
}

/// Who did a link change, for its audit record.
fn link_entry(action: &str, link: &LinkRow, by: &str, via: &str) -> Entry {
    let mut details = Map::new();
    details.insert("action".into(), json!(action));
    details.insert("chat".into(), json!(link.channel));
    details.insert("external_id".into(), json!(link.external_id));
    details.insert("person".into(), json!(link.person));
    Entry {
        kind: Kind::ChatLink,
        actor: Actor {
            kind: ActorKind::Person,
            id: by.to_owned(),
            channel: Some(via.to_owned()),
        },
        subject: Subject {
            details,
            ..Subject::default()
        },
    }
}

fn link_from(row: &sqlx::any::AnyRow) -> Result<LinkRow, StoreError> {
    Ok(LinkRow {
        channel: row.try_get(0)?,
        external_id: row.try_get(1)?,
        person: row.try_get(2)?,
        linked_by: row.try_get(3)?,
        linked_at: codec::time(row.try_get(4)?),
        confirmed_by: row.try_get(5)?,
    })
}

/// The stored link of a chat account, read in the writer's transaction.
async fn stored_link(
    w: &mut Writer<'_>,
    channel: &str,
    external_id: &str,
) -> Result<Option<LinkRow>, StoreError> {
    sqlx::query(&format!(
        "SELECT {LINK_COLUMNS} FROM chat_links WHERE channel = $1 AND external_id = $2"
    ))
    .bind(channel)
    .bind(external_id)
    .fetch_optional(w.conn())
    .await?
    .as_ref()
    .map(link_from)
    .transpose()
}

/// How long a claimed post may stay unposted before another caller may post it.
pub const CLAIM_TIMEOUT: Duration = Duration::from_secs(30);

const LINK_COLUMNS: &str = "channel, external_id, person, linked_by, linked_at, confirmed_by";

impl Store {
    /// Links a chat account to `link.person` (replacing an earlier link of that account),
    /// with a `chat_link` audit record by `by` through `via`, in one transaction.
    pub async fn link_chat(&self, link: &LinkRow, via: &str) -> Result<(), StoreError> {
        let now = codec::trunc(link.linked_at);
        let mut w = self.writer().await?;
        sqlx::query("DELETE FROM chat_links WHERE channel = $1 AND external_id = $2")
            .bind(&link.channel)
            .bind(&link.external_id)
            .execute(w.conn())
            .await?;
        sqlx::query(&format!(
            "INSERT INTO chat_links ({LINK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
        ))
        .bind(&link.channel)
        .bind(&link.external_id)
        .bind(&link.person)
        .bind(&link.linked_by)
        .bind(codec::ms(now))
        .bind(&link.confirmed_by)
        .execute(w.conn())
        .await?;
        let action = if link.confirmed() { "link" } else { "propose" };
        w.append(link_entry(action, link, &link.linked_by, via), now)?;
        w.commit().await
    }

    /// `person` confirms the link of their chat account awaiting them (audit record
    /// `chat_link`, action `confirm`); returns it, or `NotFound` when no such link awaits them.
    pub async fn confirm_chat_link(
        &self,
        channel: &str,
        external_id: &str,
        person: &str,
        via: &str,
        now: SystemTime,
    ) -> Result<LinkRow, StoreError> {
        let now = codec::trunc(now);
        let mut w = self.writer().await?;
        let mut link = stored_link(&mut w, channel, external_id)
            .await?
            .filter(|l| l.person == person && !l.confirmed())
            .ok_or_else(|| {
                StoreError::NotFound(format!(
                    "no link of {channel} account {external_id} to {person} awaits confirmation"
                ))
            })?;
        sqlx::query(
            "UPDATE chat_links SET confirmed_by = $1 WHERE channel = $2 AND external_id = $3",
        )
        .bind(person)
        .bind(channel)
        .bind(external_id)
        .execute(w.conn())
        .await?;
        link.confirmed_by = person.to_owned();
        w.append(link_entry("confirm", &link, person, via), now)?;
        w.commit().await?;
        Ok(link)
    }

    /// Removes the link of a chat account (audit record `chat_link`, action `unlink`);
    /// returns it, or `NotFound`.
    pub async fn unlink_chat(
        &self,
        channel: &str,
        external_id: &str,
        by: &str,
        via: &str,
        now: SystemTime,
    ) -> Result<LinkRow, StoreError> {
        let now = codec::trunc(now);
        let mut w = self.writer().await?;
        let link = stored_link(&mut w, channel, external_id)
            .await?
            .ok_or_else(|| {
                StoreError::NotFound(format!("no {channel} account {external_id} is linked"))
            })?;
        sqlx::query("DELETE FROM chat_links WHERE channel = $1 AND external_id = $2")
            .bind(channel)
            .bind(external_id)
            .execute(w.conn())
            .await?;
        w.append(link_entry("unlink", &link, by, via), now)?;
        w.commit().await?;
        Ok(link)
    }

    /// Every link (of `channel` when given), by chat and account.
    pub async fn chat_links(&self, channel: Option<&str>) -> Result<Vec<LinkRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {LINK_COLUMNS} FROM chat_links WHERE ($1 = '' OR channel = $1) \
             ORDER BY channel, external_id"
        ))
        .bind(channel.unwrap_or(""))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(link_from).collect()
    }

    /// The person a chat account acts as: linked, and the link confirmed by that person.
    pub async fn linked_person(
        &self,
        channel: &str,
        external_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT person FROM chat_links \
             WHERE channel = $1 AND external_id = $2 AND confirmed_by <> ''",
        )
        .bind(channel)
        .bind(external_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// Claims the message of `request_id` in `target`: true for the one caller (of every
    /// replica) that should post it. A claim still unposted after [`CLAIM_TIMEOUT`] (its
    /// replica died while posting) is given to the next caller.
    pub async fn claim_chat_message(
        &self,
        request_id: &str,
        channel: &str,
        target: &str,
        now: SystemTime,
    ) -> Result<bool, StoreError> {
        let stale = now
            .checked_sub(CLAIM_TIMEOUT)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        sqlx::query(
            "DELETE FROM chat_messages WHERE request_id = $1 AND channel = $2 AND target = $3 \
             AND message_ref = '' AND posted_at < $4",
        )
        .bind(request_id)
        .bind(channel)
        .bind(target)
        .bind(codec::ms(stale))
        .execute(self.pool())
        .await?;
        let done = sqlx::query(
            "INSERT INTO chat_messages (request_id, channel, target, message_ref, extra, posted_at) \
             VALUES ($1, $2, $3, '', '', $4) ON CONFLICT DO NOTHING",
        )
        .bind(request_id)
        .bind(channel)
        .bind(target)
        .bind(codec::ms(now))
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records where a claimed message was posted.
    pub async fn set_chat_message(&self, m: &MessageRow) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE chat_messages SET message_ref = $1, extra = $2 \
             WHERE request_id = $3 AND channel = $4 AND target = $5",
        )
        .bind(&m.message_ref)
        .bind(&m.extra)
        .bind(&m.request_id)
        .bind(&m.channel)
        .bind(&m.target)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Gives up a claim whose post failed, so that a later event posts again.
    pub async fn release_chat_message(
        &self,
        request_id: &str,
        channel: &str,
        target: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM chat_messages WHERE request_id = $1 AND channel = $2 AND target = $3 \
             AND message_ref = ''",
        )
        .bind(request_id)
        .bind(channel)
        .bind(target)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The posted messages of a request in one chat.
    pub async fn chat_messages(
        &self,
        request_id: &str,
        channel: &str,
    ) -> Result<Vec<MessageRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT request_id, channel, target, message_ref, extra FROM chat_messages \
             WHERE request_id = $1 AND channel = $2 AND message_ref <> '' ORDER BY target",
        )
        .bind(request_id)
        .bind(channel)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(MessageRow {
                    request_id: row.try_get(0)?,
                    channel: row.try_get(1)?,
                    target: row.try_get(2)?,
                    message_ref: row.try_get(3)?,
                    extra: row.try_get(4)?,
                })
            })
            .collect()
    }

    /// Whether a signed callback (by the digest of its signature) is seen for the first
    /// time within `window`; digests older than the window are forgotten.
    pub async fn first_sight(
        &self,
        digest: &str,
        now: SystemTime,
        window: Duration,
    ) -> Result<bool, StoreError> {
        let cutoff = codec::ms(now.checked_sub(window).unwrap_or(SystemTime::UNIX_EPOCH));
        sqlx::query("DELETE FROM chat_replays WHERE seen_at < $1")
            .bind(cutoff)
            .execute(self.pool())
            .await?;
        let done = sqlx::query(
            "INSERT INTO chat_replays (digest, seen_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(digest)
        .bind(codec::ms(now))
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Decision events of every host after `after` (oldest first, at most `limit`), with
    /// their cursors: what the chat bridges follow.
    pub async fn decision_feed(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, pb::DecisionEvent)>, StoreError> {
        let rows =
            sqlx::query("SELECT id, body FROM decision_events WHERE id > $1 ORDER BY id LIMIT $2")
                .bind(after)
                .bind(i64::from(limit.clamp(1, 10_000)))
                .fetch_all(self.pool())
                .await?;
        rows.iter().map(super::stream::event_of).collect()
    }

    /// The newest decision event's cursor (0: none yet).
    pub async fn decision_feed_head(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COALESCE(MAX(id), 0) FROM decision_events")
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get(0)?)
    }
}

/// A refused chat callback, for its `chat_refusal` audit record.
#[derive(Clone, Debug, Default)]
pub struct ChatRefusal {
    /// `slack` or `teams`.
    pub chat: String,
    /// The linked person, or `CHAT:USER` for an account nobody linked, or empty when the
    /// callback could not be authenticated at all.
    pub actor: String,
    /// Stable code: `bad_signature`, `stale`, `replay`, `not_linked`, `not_allowed`,
    /// `already_decided`, `invalid` …
    pub code: String,
    /// What the clicker was told.
    pub message: String,
    /// Request the click was about, when known.
    pub request_id: Option<String>,
    /// The chat's own user id, when known (never the display name or e-mail).
    pub chat_user: Option<String>,
    /// Unidentified callbacks left out of the trail just before this one (flood bound).
    pub left_out: u32,
}

impl ChatRefusal {
    /// A refusal of a callback from `chat` whose clicker is not (yet) known as a person.
    pub fn unattributed(chat: &str, code: &str, message: impl Into<String>) -> Self {
        Self {
            chat: chat.into(),
            actor: String::new(),
            code: code.into(),
            message: message.into(),
            request_id: None,
            chat_user: None,
            left_out: 0,
        }
    }

    /// The same refusal, about request `id`.
    pub fn about(mut self, id: &str) -> Self {
        self.request_id = Some(id.to_owned());
        self
    }
}

impl Store {
    /// Writes the `chat_refusal` audit record of `r` (with the request's host, agent and rule
    /// when the request exists).
    pub async fn record_chat_refusal(
        &self,
        r: &ChatRefusal,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        let request = match &r.request_id {
            Some(id) => self.get_request(id).await?,
            None => None,
        };
        let mut details = Map::new();
        details.insert("code".into(), json!(r.code));
        if let Some(u) = &r.chat_user {
            details.insert("chat_user".into(), json!(u));
        }
        if r.left_out > 0 {
            details.insert("left_out_before".into(), json!(r.left_out));
        }
        if let (Some(id), None) = (&r.request_id, &request) {
            details.insert("unknown_request".into(), json!(id));
        }
        let base = request
            .as_ref()
            .map(super::subjects::request_subject)
            .unwrap_or_default();
        let actor = if r.actor.is_empty() {
            Actor {
                kind: ActorKind::Server,
                id: self.server_id().to_owned(),
                channel: Some(r.chat.clone()),
            }
        } else {
            Actor {
                kind: ActorKind::Person,
                id: r.actor.clone(),
                channel: Some(r.chat.clone()),
            }
        };
        let entry = Entry {
            kind: Kind::ChatRefusal,
            actor,
            subject: Subject {
                decision: Some("refused".into()),
                reason: Some(r.message.clone()),
                details,
                ..base
            },
        };
        self.audit_append(entry, now).await.map(|_| ())
    }
}
