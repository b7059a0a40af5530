//! Who may call what, over real mutual TLS on loopback: roles, tokens, foreign CAs, garbage.

mod grpc_support;

use std::time::Duration;

use control_plane::certs;
use countersign_api::pb;
use grpc_support::*;
use pb::agent_service_client::AgentServiceClient;
use pb::approval_service_client::ApprovalServiceClient;
use pb::audit_service_client::AuditServiceClient;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tonic::Code;

fn register() -> pb::RegisterRequest {
    pb::RegisterRequest {
        agent_version: "test".into(),
        kernel: "6.1".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn host_registers_and_people_cannot() {
    let server = TestServer::start(None).await;
    let reply = server
        .agent()
        .await
        .register(register())
        .await
        .expect("register")
        .into_inner();
    assert_eq!(reply.host, HOST);
    assert!(reply.server_time.is_some());

    // A person (certificate or token) calling AgentService.
    let e = AgentServiceClient::new(server.person("alice").await)
        .register(register())
        .await
        .expect_err("person on AgentService");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(
        e.message()
            .contains("person 'alice' may not call AgentService"),
        "{e:?}"
    );
    let e = AgentServiceClient::new(server.anonymous().await)
        .register(with_token(register(), ALICE_TOKEN))
        .await
        .expect_err("token on AgentService");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    server.stop().await;
}

#[tokio::test]
async fn hosts_cannot_use_people_services() {
    let server = TestServer::start(None).await;
    let e = ApprovalServiceClient::new(server.host().await)
        .list_pending(pb::ListPendingRequest::default())
        .await
        .expect_err("host on ApprovalService");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(
        e.message()
            .contains("host 'web-01' may not call ApprovalService"),
        "{e:?}"
    );
    let e = AuditServiceClient::new(server.host().await)
        .verify(pb::VerifyRequest {})
        .await
        .expect_err("host on AuditService");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    server.stop().await;
}

#[tokio::test]
async fn tokens_and_missing_credentials() {
    let server = TestServer::start(Some(POLICY)).await;
    let mut anonymous = ApprovalServiceClient::new(server.anonymous().await);

    // Nothing at all.
    let e = anonymous
        .list_pending(pb::ListPendingRequest::default())
        .await
        .expect_err("no credentials");
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    let e = AgentServiceClient::new(server.anonymous().await)
        .register(register())
        .await
        .expect_err("no host certificate");
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");

    // A wrong token, and a malformed header.
    let e = anonymous
        .list_pending(with_token(pb::ListPendingRequest::default(), "cst_guess"))
        .await
        .expect_err("bad token");
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    assert!(!e.message().contains("cst_guess"), "token echoed: {e:?}");
    let mut basic = tonic::Request::new(pb::ListPendingRequest::default());
    basic.metadata_mut().insert(
        "authorization",
        "Basic YWxpY2U6eA==".parse().expect("ascii"),
    );
    let e = anonymous.list_pending(basic).await.expect_err("basic auth");
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");

    // The right token works without any client certificate.
    let list = anonymous
        .list_pending(with_token(pb::ListPendingRequest::default(), ALICE_TOKEN))
        .await
        .expect("token works")
        .into_inner();
    assert!(list.requests.is_empty());
    // ... and carries alice's roles only: she is no auditor.
    let e = AuditServiceClient::new(server.anonymous().await)
        .verify(with_token(pb::VerifyRequest {}, ALICE_TOKEN))
        .await
        .expect_err("alice is no auditor");
    assert_eq!(e.code(), Code::PermissionDenied);
    assert_eq!(e.message(), "person 'alice' is not an auditor");
    let ok = AuditServiceClient::new(server.anonymous().await)
        .verify(with_token(pb::VerifyRequest {}, DAVE_TOKEN))
        .await
        .expect("dave's token")
        .into_inner();
    assert!(ok.ok, "{ok:?}");
    server.stop().await;
}

#[tokio::test]
async fn roles_are_enforced() {
    let server = TestServer::start(Some(POLICY)).await;
    let id = raise(
        &server,
        1,
        "kubectl",
        "/usr/bin/kubectl",
        "00000000000000a1",
        "lena",
    )
    .await;

    // An auditor cannot approve, an admin cannot approve, a dba cannot approve an sre rule.
    for (who, expect) in [
        ("dave", "person 'dave' is not an approver"),
        ("erin", "person 'erin' is not an approver"),
        (
            "carol",
            "person 'carol' is not in an approver group of rule 'kubectl'",
        ),
    ] {
        let e = server
            .approvals(who)
            .await
            .decide(approve_once(&id))
            .await
            .expect_err(who);
        assert_eq!(e.code(), Code::PermissionDenied, "{who}: {e:?}");
        assert!(e.message().starts_with(expect), "{who}: {e:?}");
    }
    // A certificate person missing from the people file has no role at all.
    certs::issue_client(
        &server.certs(),
        &control_plane::tls::identity::PeerIdentity::new(
            control_plane::tls::identity::Role::Person,
            "mallory",
        ),
    )
    .expect("certificate");
    let e = server
        .approvals("mallory")
        .await
        .decide(approve_once(&id))
        .await
        .expect_err("mallory");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    // Approvers are not auditors, auditors do not put policies.
    let e = server
        .audit("alice")
        .await
        .verify(pb::VerifyRequest {})
        .await
        .expect_err("alice");
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = server
        .policies("dave")
        .await
        .put(pb::PutPolicyRequest {
            yaml: POLICY.into(),
            ..Default::default()
        })
        .await
        .expect_err("dave puts");
    assert_eq!(e.code(), Code::PermissionDenied);
    assert_eq!(e.message(), "person 'dave' is not an admin");
    server.stop().await;
}

#[tokio::test]
async fn certificate_from_another_ca_fails_the_handshake() {
    let server = TestServer::start(None).await;
    let rogue = tempfile::tempdir().expect("tempdir");
    certs::generate_dev(rogue.path()).expect("rogue CA");
    // A host certificate named like ours, signed by another CA.
    certs::issue_client(
        rogue.path(),
        &control_plane::tls::identity::PeerIdentity::new(
            control_plane::tls::identity::Role::Host,
            HOST,
        ),
    )
    .expect("rogue host");
    let result = match server.channel_with(rogue.path(), "host", HOST).await {
        Err(e) => Err(e),
        Ok(channel) => AgentServiceClient::new(channel)
            .register(register())
            .await
            .map(|_| ()),
    };
    let e = result.expect_err("rogue certificate refused");
    eprintln!("refused as expected: {e:?}");
    assert!(
        !matches!(
            e.code(),
            Code::Ok | Code::PermissionDenied | Code::Unauthenticated
        ),
        "refused at the TLS layer, not by a handler: {e:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn garbage_on_the_socket_does_not_hurt() {
    let server = TestServer::start(None).await;
    let addr = server.running.as_ref().expect("running").addr;
    for junk in [
        &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        &[0x16, 0x03, 0x01, 0xff, 0xff, 0x01, 0x00][..],
        &[0u8; 4096][..],
        &b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04"[..],
    ] {
        let mut socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let _ = socket.write_all(junk).await;
        let mut buf = [0u8; 256];
        let _ = tokio::time::timeout(Duration::from_secs(2), socket.read(&mut buf)).await;
    }
    // Half a handshake left open must not block others either.
    let _idle = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let reply = server
        .agent()
        .await
        .register(register())
        .await
        .expect("still serving");
    assert_eq!(reply.into_inner().host, HOST);
    server.stop().await;
}
