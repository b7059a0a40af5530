//! Policy revisions and the audit trail over gRPC: put/conflict/history, validation errors,
//! daemons fetching the policy, exports that verify offline.

mod grpc_support;

use std::time::Duration;

use control_plane::audit;
use control_plane::server::keys;
use countersign_api::pb;
use grpc_support::*;
use tonic::Code;

const SMALL: &str = "version: 1\nagents:\n  - name: coding\n    cgroup: /agents/coding\n";

#[tokio::test]
async fn policy_put_conflict_history() {
    let server = TestServer::start(Some(POLICY)).await;
    let mut erin = server.policies("erin").await;
    // The seed revision, by "bootstrap".
    let seed = erin
        .get(pb::GetPolicyRevisionRequest::default())
        .await
        .expect("current")
        .into_inner();
    assert_eq!(seed.author, "bootstrap");
    assert_eq!(seed.yaml, POLICY);

    // Invalid documents are refused with every error.
    let bad = format!("{SMALL}rules:\n  - id: r\n    exec: {{ binary: /x }}\n    action: block\n  - id: s\n    action: deny\n");
    let e = erin
        .put(pb::PutPolicyRequest {
            yaml: bad.clone(),
            comment: "bad".into(),
            base_revision: seed.revision.clone(),
        })
        .await
        .expect_err("invalid policy");
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("2 errors"), "{e:?}");
    let v = server
        .policies("dave")
        .await
        .validate(pb::ValidateRequest { yaml: bad })
        .await
        .expect("validate")
        .into_inner();
    assert_eq!(v.errors.len(), 2, "{v:?}");
    assert_eq!((v.errors[0].line, v.errors[0].rule.as_str()), (8, "r"));
    assert!(
        v.errors[0].message.starts_with("unknown action 'block'"),
        "{v:?}"
    );
    assert_eq!(v.errors[1].rule, "s");
    let v = server
        .policies("dave")
        .await
        .validate(pb::ValidateRequest { yaml: SMALL.into() })
        .await
        .expect("validate")
        .into_inner();
    assert!(v.errors.is_empty());

    // Put on the current base.
    let second = erin
        .put(pb::PutPolicyRequest {
            yaml: SMALL.into(),
            comment: "smaller".into(),
            base_revision: seed.revision.clone(),
        })
        .await
        .expect("put")
        .into_inner()
        .revision;
    assert_ne!(second, seed.revision);
    // A put on the stale base is a conflict.
    let e = erin
        .put(pb::PutPolicyRequest {
            yaml: POLICY.into(),
            comment: "stale".into(),
            base_revision: seed.revision.clone(),
        })
        .await
        .expect_err("stale base");
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("policy changed since"), "{e:?}");

    // History, newest first, with authors and comments, without the text; paging.
    let mut dave = server.policies("dave").await;
    let h = dave
        .history(pb::PolicyHistoryRequest::default())
        .await
        .expect("history")
        .into_inner();
    let revs: Vec<(&str, &str, &str)> = h
        .revisions
        .iter()
        .map(|r| (r.revision.as_str(), r.author.as_str(), r.comment.as_str()))
        .collect();
    assert_eq!(revs[0], (second.as_str(), "erin", "smaller"));
    assert_eq!(
        (revs[1].0, revs[1].1),
        (seed.revision.as_str(), "bootstrap")
    );
    assert!(h.revisions.iter().all(|r| r.yaml.is_empty()));
    let page = dave
        .history(pb::PolicyHistoryRequest {
            page_size: 1,
            page_token: String::new(),
        })
        .await
        .expect("page 1")
        .into_inner();
    assert_eq!(page.revisions.len(), 1);
    assert!(!page.next_page_token.is_empty());
    let page2 = dave
        .history(pb::PolicyHistoryRequest {
            page_size: 1,
            page_token: page.next_page_token,
        })
        .await
        .expect("page 2")
        .into_inner();
    assert_eq!(page2.revisions[0].revision, seed.revision);
    let old = dave
        .get(pb::GetPolicyRevisionRequest {
            revision: seed.revision.clone(),
        })
        .await
        .expect("old")
        .into_inner();
    assert_eq!(old.yaml, POLICY);
    let e = dave
        .get(pb::GetPolicyRevisionRequest {
            revision: "p-9999".into(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(e.code(), Code::NotFound);

    // The daemon fetches the current revision, and nothing when it has it.
    let mut agent = server.agent().await;
    let got = agent
        .get_policy(pb::GetPolicyRequest::default())
        .await
        .expect("get policy")
        .into_inner();
    let doc = got.policy.expect("a document");
    assert_eq!(
        (doc.revision.as_str(), doc.yaml.as_str()),
        (second.as_str(), SMALL)
    );
    let none = agent
        .get_policy(pb::GetPolicyRequest {
            known_revision: second,
        })
        .await
        .expect("current")
        .into_inner();
    assert!(none.policy.is_none());
    server.stop().await;
}

#[tokio::test]
async fn audit_exports_verify_offline() {
    let server = TestServer::start(Some(POLICY)).await;
    // Some history: a registration, a refused attempt, a decision, a grant, a login.
    server
        .agent()
        .await
        .register(pb::RegisterRequest {
            // The daemon started after its predecessor died: the login record says so.
            previous_outage: Some(pb::Outage {
                pid: 812,
                since: Some(std::time::SystemTime::UNIX_EPOCH.into()),
                seconds: 41,
                clean: false,
                events_lost: 3,
            }),
            ..Default::default()
        })
        .await
        .expect("register");
    let id = raise(
        &server,
        1,
        "kubectl",
        "/usr/bin/kubectl",
        "0000000000000c01",
        "lena",
    )
    .await;
    server
        .approvals("alice")
        .await
        .decide(approve_once(&id))
        .await
        .expect("approve");

    let mut dave = server.audit("dave").await;
    let export = |format: pb::ExportFormat| pb::ExportRequest {
        filter: None,
        format: format.into(),
    };
    let jsonl = collect(
        dave.export(export(pb::ExportFormat::Jsonl))
            .await
            .expect("export"),
    )
    .await;
    let text = String::from_utf8(jsonl.clone()).expect("utf-8");
    assert!(text.ends_with('\n'));
    let last = text.lines().last().expect("records");
    assert!(
        last.contains("\"kind\":\"checkpoint\""),
        "a JSONL export ends signed: {last}"
    );
    for kind in ["attempt", "request", "decision", "grant", "login"] {
        assert!(
            text.contains(&format!("\"kind\":\"{kind}\"")),
            "no {kind} record in\n{text}"
        );
    }
    let login = text
        .lines()
        .find(|l| l.contains("\"kind\":\"login\""))
        .expect("login");
    assert!(
        login.contains("\"previous_outage\":{")
            && login.contains("\"seconds\":41")
            && login.contains("\"clean\":false")
            && login.contains("\"events_lost\":3"),
        "{login}"
    );
    // Offline: only the export and the public key file.
    let key = keys::read_public_key(&keys::public_key_path(&server.data())).expect("public key");
    let summary = audit::verify(jsonl.as_slice(), &key).expect("verifies");
    // Everything before the final checkpoint is covered by its signature.
    assert_eq!(
        summary.signed_through,
        Some(summary.last_seq - 1),
        "{summary:?}"
    );
    assert!(summary.checkpoints >= 1);
    // An edited export does not.
    let tampered = text.replacen("\"alice\"", "\"bob\"", 1);
    assert!(audit::verify(tampered.as_bytes(), &key).is_err());

    let csv = String::from_utf8(
        collect(
            dave.export(export(pb::ExportFormat::Csv))
                .await
                .expect("csv"),
        )
        .await,
    )
    .expect("utf-8");
    let mut lines = csv.lines();
    assert!(lines.next().expect("header").starts_with("seq,time,kind,"));
    assert!(lines.count() as u64 >= summary.records - 1, "{csv}");
    let ocsf = String::from_utf8(
        collect(
            dave.export(export(pb::ExportFormat::Ocsf))
                .await
                .expect("ocsf"),
        )
        .await,
    )
    .expect("utf-8");
    assert!(ocsf.lines().count() >= 5);
    for line in ocsf.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("OCSF line is JSON");
        assert!(v.get("class_uid").is_some(), "{line}");
    }
    let e = dave
        .export(pb::ExportRequest::default())
        .await
        .expect_err("no format");
    assert_eq!(e.code(), Code::InvalidArgument);

    // Query with a filter and paging.
    let filter = pb::AuditFilter {
        person: "alice".into(),
        ..Default::default()
    };
    let q = dave
        .query(pb::AuditQueryRequest {
            filter: Some(filter.clone()),
            page_size: 1,
            page_token: String::new(),
        })
        .await
        .expect("query")
        .into_inner();
    assert_eq!(q.records.len(), 1);
    assert!(q.records[0].record_json.contains("\"alice\""));
    let rest = dave
        .query(pb::AuditQueryRequest {
            filter: Some(filter),
            page_size: 100,
            page_token: q.next_page_token.clone(),
        })
        .await
        .expect("next page")
        .into_inner();
    assert!(rest.records.iter().all(|r| r.seq > q.records[0].seq));
    assert!(
        rest.records.iter().any(|r| r.kind == "decision"),
        "{rest:?}"
    );

    let v = dave
        .verify(pb::VerifyRequest {})
        .await
        .expect("verify")
        .into_inner();
    assert!(v.ok, "{v:?}");
    assert!(v.records_checked >= summary.records);
    server.stop().await;
}

/// Large records do not break the trail: the biggest a host may send (argv of control
/// characters, each escaped to six bytes in JSON: a line of over 1 MiB), many of them, export
/// in chunks a client decodes and verify offline; one byte more is refused by name.
#[tokio::test]
async fn large_records_export_and_verify() {
    let server = TestServer::start(Some(POLICY)).await;
    let mut agent = server.agent().await;
    agent
        .register(pb::RegisterRequest::default())
        .await
        .expect("register");
    let big = |sequence: u64, bytes: usize| {
        let mut e = refused(sequence, "kubectl", "/usr/bin/kubectl", "big", "lena");
        if let Some(op) = e.operation.as_mut() {
            op.argv = vec!["\u{1}".repeat(bytes)];
        }
        e
    };
    let fits = 250_000;
    let mut sequence = 0;
    for _ in 0..3 {
        let events = (0..8)
            .map(|_| {
                sequence += 1;
                big(sequence, fits)
            })
            .collect();
        agent
            .upload_events(pb::UploadEventsRequest { events })
            .await
            .expect("records within the bound are stored");
    }
    let e = agent
        .upload_events(pb::UploadEventsRequest {
            events: vec![big(sequence + 1, 300_000)],
        })
        .await
        .expect_err("an oversized record is refused");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().starts_with("events[0] is ") && e.message().contains("at most 262144"),
        "{}",
        e.message()
    );
    let jsonl = export_audit(&server).await.into_bytes();
    let longest = jsonl.split(|&b| b == b'\n').map(<[u8]>::len).max();
    assert!(longest > Some(1 << 20), "a line over 1 MiB: {longest:?}");
    let key = keys::read_public_key(&keys::public_key_path(&server.data())).expect("public key");
    let summary = audit::verify(jsonl.as_slice(), &key).expect("verifies");
    assert!(summary.records >= 24, "{summary:?}");
}

/// A quiet server still signs what it wrote: the records since the last checkpoint are signed
/// on a timer (`--checkpoint-every`), not only every N records or at an export, and a timer
/// with nothing new to sign writes nothing.
#[tokio::test]
async fn the_unsigned_tail_is_signed_on_a_timer() {
    let server = TestServer::start_configured(Some(POLICY), None, |c| {
        c.checkpoint_every = Duration::from_millis(200);
    })
    .await;
    raise(&server, 1, "kubectl", "/usr/bin/kubectl", "t1", "lena").await;
    let store = &server.running.as_ref().expect("running").store;
    let last_kind = || async {
        let records = store.audit_records(None, 0).await.expect("records");
        let last = records.last().expect("a record");
        (last.seq, last.kind)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let (seq, kind) = loop {
        let (seq, kind) = last_kind().await;
        if kind == audit::Kind::Checkpoint {
            break (seq, kind);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint within 5 s of the last record (seq {seq}, {kind:?})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        last_kind().await,
        (seq, kind),
        "nothing new, nothing signed"
    );
    server.stop().await;
}
