//! `countersign people`: chat accounts linked to people. An admin links, the person linked
//! confirms with the same command; a click in Slack or Teams counts only from an account whose
//! link its person confirmed, as that person.

use std::time::SystemTime;

use countersign_api::pb;

use crate::connect::Connection;
use crate::exit::{Outcome, OK};
use crate::output::{out, outln};
use crate::render::time::{clock, from_pb, relative};
use crate::render::{clean, Table};

/// Which chat account: exactly one of `--slack` or `--teams`.
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub struct Account {
    /// Slack user id (U0123ABCD: profile → ⋮ → Copy member ID).
    #[arg(long, value_name = "USER_ID")]
    pub slack: Option<String>,
    /// Microsoft Entra (AAD) object id of a Teams user.
    #[arg(long, value_name = "OBJECT_ID")]
    pub teams: Option<String>,
}

impl Account {
    fn parts(&self) -> (&'static str, String) {
        match (&self.slack, &self.teams) {
            (Some(id), _) => ("slack", id.clone()),
            (None, Some(id)) => ("teams", id.clone()),
            (None, None) => ("", String::new()),
        }
    }
}

/// `people` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum PeopleCommand {
    /// Link a chat account to a person of the server's people file (admins); the link acts
    /// once that person confirms it by running the same command themselves.
    Link {
        /// Person (as in the people file).
        person: String,
        #[command(flatten)]
        account: Account,
    },
    /// Remove a chat account's link.
    Unlink {
        #[command(flatten)]
        account: Account,
    },
    /// Every linked chat account.
    Links {
        /// Only this chat (slack or teams).
        #[arg(long)]
        chat: Option<String>,
    },
}

/// Runs a `people` subcommand.
pub async fn run(conn: &Connection, command: &PeopleCommand) -> Outcome {
    match command {
        PeopleCommand::Link { person, account } => {
            let (chat, external_id) = account.parts();
            let link = conn
                .people()
                .link(pb::LinkRequest {
                    person: person.clone(),
                    chat: chat.to_owned(),
                    external_id,
                })
                .await?
                .into_inner();
            let (chat, id, person) = (
                clean(&link.chat),
                clean(&link.external_id),
                clean(&link.person),
            );
            if link.confirmed {
                outln!("linked {chat} account {id} to {person} (confirmed by {person})");
            } else {
                outln!(
                    "proposed: {chat} account {id} linked to {person}; it acts as {person} once \
                     {person} confirms it: countersign people link {person} --{chat} {id}"
                );
            }
        }
        PeopleCommand::Unlink { account } => {
            let (chat, external_id) = account.parts();
            let link = conn
                .people()
                .unlink(pb::UnlinkRequest {
                    chat: chat.to_owned(),
                    external_id,
                })
                .await?
                .into_inner();
            outln!(
                "unlinked {} account {} (was {})",
                clean(&link.chat),
                clean(&link.external_id),
                clean(&link.person)
            );
        }
        PeopleCommand::Links { chat } => {
            let links = conn
                .people()
                .list_links(pb::ListLinksRequest {
                    chat: chat.clone().unwrap_or_default(),
                })
                .await?
                .into_inner()
                .links;
            let now = SystemTime::now();
            let mut t = Table::new(&[
                "CHAT",
                "ACCOUNT",
                "PERSON",
                "LINKED BY",
                "LINKED",
                "CONFIRMED",
            ]);
            for l in &links {
                let at = from_pb(l.linked_at.as_ref()).map_or_else(
                    || "-".into(),
                    |c| format!("{} ({})", clock(c, now), relative(c, now)),
                );
                t.row(vec![
                    clean(&l.chat).into_owned(),
                    clean(&l.external_id).into_owned(),
                    clean(&l.person).into_owned(),
                    clean(&l.linked_by).into_owned(),
                    at,
                    if l.confirmed {
                        "yes".to_owned()
                    } else {
                        format!("awaits {}", clean(&l.person))
                    },
                ]);
            }
            out!("{}", t.render());
        }
    }
    Ok(OK)
}
