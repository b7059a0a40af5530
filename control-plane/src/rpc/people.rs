//! `PeopleService`: admins link chat accounts (Slack user ids, Teams AAD object ids) to
//! people of the people file, and each link acts only once its person confirmed it — with
//! their own credential, the same call — so an admin cannot make their own chat account act
//! as an approver. Links are stored (shared by replicas) and audited.

use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status};

use super::check::invalid;
use super::pb::people_service_server::{PeopleService, PeopleServiceServer};
use super::pb::{ChatLink, LinkRequest, ListLinksRequest, ListLinksResponse, UnlinkRequest};
use super::Ctx;
use crate::people::auth::Audience;
use crate::people::{Authenticator, Caller, Role};
use crate::store::LinkRow;

/// Server-side `PeopleService`.
#[derive(Debug, Clone)]
pub struct PeopleApi {
    ctx: Ctx,
}

/// The service behind its people-only authenticator.
pub fn service(ctx: &Ctx) -> InterceptedService<PeopleServiceServer<PeopleApi>, Authenticator> {
    PeopleServiceServer::with_interceptor(
        PeopleApi { ctx: ctx.clone() },
        ctx.authenticator(Audience::People, "PeopleService"),
    )
}

/// Checks a chat name and the account id's form for that chat.
pub fn check_account(chat: &str, id: &str) -> Result<(), Status> {
    let ok = match chat {
        // Slack user ids: U… or W… (Enterprise Grid), upper-case letters and digits.
        "slack" => {
            (3..=32).contains(&id.len())
                && matches!(id.as_bytes()[0], b'U' | b'W')
                && id
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        }
        // Microsoft Entra (AAD) object ids: a GUID.
        "teams" => crate::chat::teams::config::is_guid(id),
        other => {
            return Err(invalid(format!(
                "chat {:?} is not known (slack or teams)",
                super::check::shorten(other)
            )))
        }
    };
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "external_id {:?} is not a {chat} user id ({})",
            super::check::shorten(id),
            if chat == "slack" {
                "like U0123ABCD"
            } else {
                "an AAD object id like 00000000-0000-0000-0000-000000000000"
            }
        )))
    }
}

/// Teams sends AAD object ids in lower case (and links compare exactly): an id typed in
/// upper case is stored as Teams will send it.
fn canonical(chat: &mut String, id: &mut String) {
    if chat == "teams" {
        *id = id.to_ascii_lowercase();
    }
}

fn to_pb(l: &LinkRow) -> ChatLink {
    ChatLink {
        chat: l.channel.clone(),
        external_id: l.external_id.clone(),
        person: l.person.clone(),
        linked_by: l.linked_by.clone(),
        linked_at: Some(l.linked_at.into()),
        confirmed: l.confirmed(),
    }
}

#[tonic::async_trait]
impl PeopleService for PeopleApi {
    async fn link(&self, request: Request<LinkRequest>) -> Result<Response<ChatLink>, Status> {
        let caller = Caller::person(&request)?;
        let mut ask = request.into_inner();
        canonical(&mut ask.chat, &mut ask.external_id);
        check_account(&ask.chat, &ask.external_id)?;
        let me = caller.person.name.clone();
        let store = &self.ctx.store;
        if ask.person == me {
            match store
                .confirm_chat_link(
                    &ask.chat,
                    &ask.external_id,
                    &me,
                    &caller.channel,
                    crate::store::now(),
                )
                .await
            {
                Ok(link) => {
                    tracing::info!(chat = %link.channel, account = %link.external_id, person = %link.person, "chat account link confirmed");
                    return Ok(Response::new(to_pb(&link)));
                }
                Err(crate::store::StoreError::NotFound(_)) if caller.person.has(Role::Admin) => {}
                Err(crate::store::StoreError::NotFound(_)) => {
                    return Err(Status::permission_denied(format!(
                        "no link of {} account {} to you awaits your confirmation: a \
                         security admin links it first (countersign people link {me} --{} {}), \
                         then you confirm it with the same command",
                        ask.chat, ask.external_id, ask.chat, ask.external_id
                    )))
                }
                Err(e) => return Err(e.into()),
            }
        }
        caller.person.require(Role::Admin)?;
        if self.ctx.people.get(&ask.person).is_none() {
            return Err(Status::not_found(format!(
                "no person '{}' in the server's people file",
                super::check::shorten(&ask.person)
            )));
        }
        let own = ask.person == me;
        let link = LinkRow {
            channel: ask.chat,
            external_id: ask.external_id,
            person: ask.person,
            linked_by: me,
            linked_at: crate::store::now(),
            // An admin's own account needs no one else; anyone else's waits for them.
            confirmed_by: if own {
                caller.person.name.clone()
            } else {
                String::new()
            },
        };
        store.link_chat(&link, &caller.channel).await?;
        if own {
            tracing::info!(chat = %link.channel, account = %link.external_id, person = %link.person, "chat account linked (the admin's own)");
        } else {
            tracing::info!(chat = %link.channel, account = %link.external_id, person = %link.person, by = %link.linked_by, "chat account link proposed: it acts once its person confirms it");
        }
        Ok(Response::new(to_pb(&link)))
    }

    async fn unlink(&self, request: Request<UnlinkRequest>) -> Result<Response<ChatLink>, Status> {
        let caller = Caller::person(&request)?;
        caller.person.require(Role::Admin)?;
        let mut ask = request.into_inner();
        canonical(&mut ask.chat, &mut ask.external_id);
        check_account(&ask.chat, &ask.external_id)?;
        let link = self
            .ctx
            .store
            .unlink_chat(
                &ask.chat,
                &ask.external_id,
                &caller.person.name,
                &caller.channel,
                crate::store::now(),
            )
            .await?;
        tracing::info!(chat = %link.channel, account = %link.external_id, person = %link.person, "chat account unlinked");
        Ok(Response::new(to_pb(&link)))
    }

    async fn list_links(
        &self,
        request: Request<ListLinksRequest>,
    ) -> Result<Response<ListLinksResponse>, Status> {
        super::policy::reader(&Caller::person(&request)?)?;
        let chat = request.into_inner().chat;
        if !chat.is_empty() && chat != "slack" && chat != "teams" {
            return Err(invalid(format!(
                "chat {:?} is not known (slack or teams)",
                super::check::shorten(&chat)
            )));
        }
        let links = self
            .ctx
            .store
            .chat_links(Some(chat.as_str()).filter(|c| !c.is_empty()))
            .await?;
        Ok(Response::new(ListLinksResponse {
            links: links.iter().map(to_pb).collect(),
        }))
    }
}
