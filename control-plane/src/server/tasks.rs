//! Background work of a running server: expiring requests nobody decided, signing the audit
//! trail's tail on a timer, and writing the login audit records that authentication reports.

use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};
use tokio::sync::mpsc;

use crate::audit::{Actor, ActorKind, Entry, Kind, Subject};
use crate::people::logins::Login;
use crate::store::Store;

/// How often pending requests are checked for expiry.
pub const EXPIRE_EVERY: Duration = Duration::from_millis(250);

/// Expires due requests every [`EXPIRE_EVERY`], forever (abort the task to stop it).
pub async fn expire(store: Store) {
    let mut tick = tokio::time::interval(EXPIRE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tick.tick().await;
        match store.expire_due(SystemTime::now()).await {
            Ok(expired) => {
                if failing {
                    tracing::info!("request expiry works again");
                    failing = false;
                }
                for r in expired {
                    tracing::info!(request = %r.id, host = %r.host, rule = %r.spec.rule, "request expired undecided");
                }
            }
            // Logged once per failure streak: a database outage must not flood the log.
            Err(e) if !failing => {
                tracing::warn!(error = %e, "expiring requests failed (retrying every 250 ms)");
                failing = true;
            }
            Err(_) => {}
        }
    }
}

/// Every `every`, signs the records written since the last checkpoint, if any, forever
/// (abort the task to stop it): the count-based checkpoints alone leave a quiet server's
/// latest records unsigned for as long as it stays quiet.
pub async fn checkpoint(store: Store, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is now: nothing to sign yet
    let mut failing = false;
    loop {
        tick.tick().await;
        match store.audit_checkpoint_if_unsigned(SystemTime::now()).await {
            Ok(signed) => {
                if failing {
                    tracing::info!("periodic audit checkpoints work again");
                    failing = false;
                }
                if signed {
                    tracing::debug!("periodic audit checkpoint written");
                }
            }
            Err(e) if !failing => {
                tracing::warn!(error = %e, "periodic audit checkpoint failed (retrying)");
                failing = true;
            }
            Err(_) => {}
        }
    }
}

/// Writes a `login` audit record for every login reported, until the senders are gone.
pub async fn record_logins(store: Store, mut logins: mpsc::UnboundedReceiver<Login>) {
    while let Some(login) = logins.recv().await {
        let mut details = Map::new();
        details.insert(
            "credential".to_owned(),
            Value::String(login.credential.as_str().to_owned()),
        );
        let entry = Entry {
            kind: Kind::Login,
            actor: Actor {
                kind: ActorKind::Person,
                id: login.person.clone(),
                channel: Some(login.channel.clone()),
            },
            subject: Subject {
                details,
                ..Subject::default()
            },
        };
        if let Err(e) = store.audit_append(entry, SystemTime::now()).await {
            tracing::warn!(person = %login.person, error = %e, "could not record a login in the audit trail");
        }
    }
}
