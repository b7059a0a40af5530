//! `PeopleService` over real mTLS: admins link chat accounts to people, checked and
//! audited; nobody else may; a link acts once the person linked confirmed it.

mod grpc_support;

use control_plane::audit::Kind;
use countersign_api::pb;
use grpc_support::TestServer;
use pb::people_service_client::PeopleServiceClient;
use serde_json::json;
use tonic::Code;

fn link(person: &str, chat: &str, id: &str) -> pb::LinkRequest {
    pb::LinkRequest {
        person: person.into(),
        chat: chat.into(),
        external_id: id.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_link_chat_accounts_checked_and_audited() {
    let server = TestServer::start(None).await;
    let mut erin = PeopleServiceClient::new(server.person("erin").await);
    let made = erin
        .link(link("alice", "slack", "U0ALICE"))
        .await
        .expect("admin links")
        .into_inner();
    assert_eq!(
        (
            made.person.as_str(),
            made.linked_by.as_str(),
            made.confirmed
        ),
        ("alice", "erin", false)
    );
    // Teams sends object ids in lower case: one typed in upper case is stored that way.
    let teams = erin
        .link(link("bob", "teams", "6B9C2F3E-1D2A-4B5C-9E8F-0A1B2C3D4E5F"))
        .await
        .expect("teams link")
        .into_inner();
    assert_eq!(teams.external_id, "6b9c2f3e-1d2a-4b5c-9e8f-0a1b2c3d4e5f");
    // Relinking an account moves it.
    erin.link(link("bob", "slack", "U0ALICE"))
        .await
        .expect("relink");

    for (request, code, words) in [
        (
            link("alice", "slack", "alice"),
            Code::InvalidArgument,
            "not a slack user id",
        ),
        (
            link("alice", "teams", "U0ALICE"),
            Code::InvalidArgument,
            "not a teams user id",
        ),
        (
            link("alice", "irc", "U0ALICE"),
            Code::InvalidArgument,
            "not known",
        ),
        (
            link("mallory", "slack", "U0MAL"),
            Code::NotFound,
            "no person 'mallory'",
        ),
    ] {
        let e = erin.link(request).await.expect_err("refused");
        assert_eq!(e.code(), code, "{e:?}");
        assert!(e.message().contains(words), "{e:?}");
    }
    let e = PeopleServiceClient::new(server.person("alice").await)
        .link(link("alice", "slack", "U0SELF"))
        .await
        .expect_err("an approver cannot link (herself or anyone)");
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("awaits your confirmation"), "{e:?}");

    let links = PeopleServiceClient::new(server.person("dave").await)
        .list_links(pb::ListLinksRequest {
            chat: "slack".into(),
        })
        .await
        .expect("auditor lists")
        .into_inner()
        .links;
    assert_eq!(links.len(), 1);
    assert_eq!(
        (links[0].external_id.as_str(), links[0].person.as_str()),
        ("U0ALICE", "bob")
    );

    let gone = erin
        .unlink(pb::UnlinkRequest {
            chat: "slack".into(),
            external_id: "U0ALICE".into(),
        })
        .await
        .expect("unlink")
        .into_inner();
    assert_eq!(gone.person, "bob");
    let e = erin
        .unlink(pb::UnlinkRequest {
            chat: "slack".into(),
            external_id: "U0ALICE".into(),
        })
        .await
        .expect_err("twice");
    assert_eq!(e.code(), Code::NotFound);

    let store = &server.running.as_ref().expect("running").store;
    let records = store.audit_records(None, 0).await.expect("audit");
    let actions: Vec<_> = records
        .iter()
        .filter(|r| r.kind == Kind::ChatLink)
        .map(|r| {
            (
                r.actor.id.clone(),
                r.subject.details["action"].clone(),
                r.subject.details["person"].clone(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        vec![
            ("erin".to_owned(), json!("propose"), json!("alice")),
            ("erin".to_owned(), json!("propose"), json!("bob")),
            ("erin".to_owned(), json!("propose"), json!("bob")),
            ("erin".to_owned(), json!("unlink"), json!("bob")),
        ]
    );
    server.stop().await;
}

/// An admin who links their own chat account to an approver would approve as that approver:
/// the link acts as nobody until the approver confirms it with their own credential, and
/// nobody else can confirm it. An admin's link of their own account acts at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_acts_only_once_its_person_confirms_it() {
    let server = TestServer::start(None).await;
    let store = &server.running.as_ref().expect("running").store;
    let mut erin = PeopleServiceClient::new(server.person("erin").await);
    let proposed = erin
        .link(link("alice", "slack", "U0ERIN"))
        .await
        .expect("admin links her account to alice")
        .into_inner();
    assert!(!proposed.confirmed, "{proposed:?}");
    assert_eq!(
        store.linked_person("slack", "U0ERIN").await.expect("read"),
        None,
        "an unconfirmed link acts as nobody"
    );
    for who in ["bob", "erin"] {
        let e = PeopleServiceClient::new(server.person(who).await)
            .link(link("bob", "slack", "U0ERIN"))
            .await;
        if who == "erin" {
            // An admin may relink it, to bob, still unconfirmed.
            assert!(!e.expect("relink").into_inner().confirmed);
            erin.link(link("alice", "slack", "U0ERIN"))
                .await
                .expect("back to alice");
        } else {
            let e = e.expect_err("bob confirms nothing for alice");
            assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
        }
    }
    let confirmed = PeopleServiceClient::new(server.person("alice").await)
        .link(link("alice", "slack", "U0ERIN"))
        .await
        .expect("alice confirms")
        .into_inner();
    assert!(confirmed.confirmed, "{confirmed:?}");
    assert_eq!(confirmed.linked_by, "erin");
    assert_eq!(
        store
            .linked_person("slack", "U0ERIN")
            .await
            .expect("read")
            .as_deref(),
        Some("alice")
    );
    let own = erin
        .link(link(
            "erin",
            "teams",
            "6b9c2f3e-1d2a-4b5c-9e8f-0a1b2c3d4e5f",
        ))
        .await
        .expect("an admin links her own account")
        .into_inner();
    assert!(own.confirmed, "{own:?}");

    let records = store.audit_records(None, 0).await.expect("audit");
    let actions: Vec<_> = records
        .iter()
        .filter(|r| r.kind == Kind::ChatLink)
        .map(|r| (r.actor.id.clone(), r.subject.details["action"].clone()))
        .collect();
    assert_eq!(
        actions,
        vec![
            ("erin".to_owned(), json!("propose")),
            ("erin".to_owned(), json!("propose")),
            ("erin".to_owned(), json!("propose")),
            ("alice".to_owned(), json!("confirm")),
            ("erin".to_owned(), json!("link")),
        ]
    );
    server.stop().await;
}
