//! Malformed input over gRPC: every bad field is `invalid_argument` naming it, unknown ids
//! are `not_found`, and a refused batch stores nothing.

mod grpc_support;

use countersign_api::pb;
use grpc_support::*;
use tonic::Code;

#[tokio::test]
async fn malformed_input_is_refused_with_the_field() {
    let server = TestServer::start(Some(POLICY)).await;
    let mut agent = server.agent().await;
    let code_and_message = |r: Result<tonic::Response<pb::UploadEventsResponse>, tonic::Status>| {
        let e = r.expect_err("refused");
        (e.code(), e.message().to_owned())
    };
    let (code, msg) = code_and_message(
        agent
            .upload_events(pb::UploadEventsRequest {
                events: vec![refused(0, "kubectl", "/usr/bin/kubectl", "aa", "lena")],
            })
            .await,
    );
    assert_eq!(code, Code::InvalidArgument);
    assert!(msg.starts_with("events[0].sequence must be > 0"), "{msg}");
    let mut unnamed = refused(1, "kubectl", "/usr/bin/kubectl", "aa", "lena");
    if let Some(op) = unnamed.operation.as_mut() {
        op.fingerprint = "not-a-fingerprint".into();
    }
    let (code, msg) = code_and_message(
        agent
            .upload_events(pb::UploadEventsRequest {
                events: vec![unnamed],
            })
            .await,
    );
    assert_eq!(code, Code::InvalidArgument);
    assert!(msg.starts_with("events[0].operation.fingerprint"), "{msg}");
    let (code, msg) = code_and_message(
        agent
            .upload_events(pb::UploadEventsRequest {
                events: vec![
                    refused(5, "kubectl", "/usr/bin/kubectl", "aa", "lena"),
                    refused(4, "kubectl", "/usr/bin/kubectl", "aa", "lena"),
                ],
            })
            .await,
    );
    assert_eq!(code, Code::InvalidArgument);
    assert!(msg.starts_with("events[1].sequence 4"), "{msg}");
    let mut bad_kind = refused(1, "kubectl", "/usr/bin/kubectl", "aa", "lena");
    bad_kind.kind = 99;
    let (code, msg) = code_and_message(
        agent
            .upload_events(pb::UploadEventsRequest {
                events: vec![bad_kind],
            })
            .await,
    );
    assert_eq!(code, Code::InvalidArgument);
    assert!(msg.starts_with("events[0].kind 99"), "{msg}");
    // Nothing of the refused batches was stored.
    let reg = agent
        .register(pb::RegisterRequest::default())
        .await
        .expect("register")
        .into_inner();
    assert_eq!(reg.last_acked_sequence, 0);

    let e = agent
        .decisions(pb::DecisionsRequest {
            cursor: "abc".into(),
        })
        .await
        .expect_err("bad cursor");
    assert_eq!(e.code(), Code::InvalidArgument);
    let mut unnamed = operation("/x", "y", "lena");
    unnamed.fingerprint = "XYZ".into();
    let e = agent
        .forward_request(pb::ForwardRequestRequest {
            operation: Some(unnamed),
            ..Default::default()
        })
        .await
        .expect_err("bad fingerprint");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("operation.fingerprint"), "{e:?}");
    // An operation too large to store is refused by name.
    let mut huge = operation("/usr/bin/kubectl", "x", "lena");
    huge.argv.push("y".repeat(300_000));
    let e = agent
        .forward_request(pb::ForwardRequestRequest {
            operation: Some(huge),
            rule: "kubectl".into(),
            ..Default::default()
        })
        .await
        .expect_err("oversized");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().starts_with("operation is ") && e.message().contains("at most 262144"),
        "{e:?}"
    );

    // An ask whose id is not the operation it shows, or whose arguments were cut, is
    // refused: approvers would read one command and the daemon grant another.
    let mut forged = operation("/usr/bin/kubectl", "staging", "lena");
    forged.argv[3] = "prod".into();
    let mut truncated = operation("/usr/bin/kubectl", "x", "lena");
    truncated.argv_truncated = true;
    for (op, says) in [
        (
            forged,
            "its fingerprint is not the id of the operation it shows",
        ),
        (
            truncated,
            "its arguments are longer than the kernel captures",
        ),
    ] {
        let e = agent
            .forward_request(pb::ForwardRequestRequest {
                operation: Some(op),
                rule: "kubectl".into(),
                ..Default::default()
            })
            .await
            .expect_err("not approvable");
        assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
        assert!(
            e.message()
                .starts_with(&format!("this operation cannot be approved: {says}")),
            "{e:?}"
        );
    }

    let mut alice = server.approvals("alice").await;
    let e = alice
        .get_request(pb::GetRequestRequest {
            request_id: "r-00000000ff".into(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let e = alice
        .decide(approve_once("r-00000000ff"))
        .await
        .expect_err("unknown");
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let e = alice
        .get_request(pb::GetRequestRequest {
            request_id: "../../etc".into(),
        })
        .await
        .expect_err("malformed");
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().starts_with("request_id"), "{e:?}");
    let e = alice
        .decide(pb::DecideRequest {
            request_id: "r-00000000ff".into(),
            verdict: None,
        })
        .await
        .expect_err("no verdict");
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = alice
        .revoke(pb::RevokeRequest {
            grant_id: "00000000000000ff".into(),
            reason: "x".into(),
        })
        .await
        .expect_err("unknown grant");
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let e = alice
        .revoke(pb::RevokeRequest {
            grant_id: "zz".into(),
            reason: "x".into(),
        })
        .await
        .expect_err("bad grant");
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    server.stop().await;
}
