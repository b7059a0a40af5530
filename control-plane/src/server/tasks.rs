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
    let work = || {
        let store = store.clone();
        async move { store.expire_due(SystemTime::now()).await }
    };
    every(EXPIRE_EVERY, "request expiry", work, |expired| {
        for r in expired {
            tracing::info!(request = %r.id, host = %r.host, rule = %r.spec.rule, "request expired undecided");
        }
    })
    .await;
}

/// Every `period`, signs the records written since the last checkpoint, if any, forever
/// (abort the task to stop it): the count-based checkpoints alone leave a quiet server's
/// latest records unsigned for as long as it stays quiet.
pub async fn checkpoint(store: Store, period: Duration) {
    let work = || {
        let store = store.clone();
        async move { store.audit_checkpoint_if_unsigned(SystemTime::now()).await }
    };
    every(period, "periodic audit checkpoint", work, |signed| {
        if signed {
            tracing::debug!("periodic audit checkpoint written");
        }
    })
    .await;
}

/// Runs `work` every `period`, forever, handing what it returns to `done`. A failure is
/// logged once per streak (a database outage must not flood the log), and its end too.
async fn every<T, F, Fut>(period: Duration, what: &str, mut work: F, mut done: impl FnMut(T))
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, crate::store::StoreError>>,
{
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tick.tick().await;
        match work().await {
            Ok(value) => {
                if failing {
                    tracing::info!("{what} works again");
                    failing = false;
                }
                done(value);
            }
            Err(e) if !failing => {
                tracing::warn!(error = %e, "{what} failed (retrying every {period:?})");
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
