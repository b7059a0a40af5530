//! The agent socket's answers, against a fake daemon.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use agent_common::Action;
use policy::{Decision, FileId, RuleRef};

use super::{
    handler::{AgentApi, Caller},
    host::{Host, LiveGrant, Operation, Process},
    protocol::{AgentResponse, WaitOutcome},
    NOT_IN_SESSION,
};
use crate::session::{GroupCgroup, SessionKey};
use crate::{
    approvals::{GrantInfo, Refusals, RequestTable, State},
    events::Record,
    session::Registry,
    uplink::{Config, Link},
};

const S1_PID: u32 = 100;
const S2_PID: u32 = 200;
const OUTSIDE_PID: u32 = 300;
/// Operation id of `rm -rf /tmp/scratch` (`/usr/bin/rm` below) refused by rule 1.
const RM_FP: &str = "6bbc2a815923d29bfcd0cd6cc284833c";

#[derive(Default)]
struct FakeHost {
    grants: Mutex<HashMap<(SessionKey, String), LiveGrant>>,
}

impl Host for FakeHost {
    fn groups(&self) -> Vec<GroupCgroup> {
        vec![GroupCgroup {
            name: "coding".into(),
            cgroup: "/cs/coding".into(),
        }]
    }
    fn cgroup_of(&self, pid: u32) -> Result<String, String> {
        match pid {
            S1_PID => Ok("/cs/coding/s1".into()),
            S2_PID => Ok("/cs/coding/s2/sub".into()),
            OUTSIDE_PID => Ok("/user.slice".into()),
            _ => Err("no such process".into()),
        }
    }
    fn live_grant(&self, key: &SessionKey, fingerprint: &str) -> Option<LiveGrant> {
        let g = self.grants.lock().expect("lock");
        g.get(&(key.clone(), fingerprint.to_owned())).cloned()
    }
    fn file_identity(&self, _pid: u32, path: &str) -> Result<FileId, String> {
        match path {
            "/usr/bin/rm" => Ok(FileId {
                dev: 254 << 20,
                ino: 247_730,
            }),
            _ => Err(format!("{path}: no such file")),
        }
    }
    fn exe_identity(&self, _pid: u32) -> Option<FileId> {
        None
    }
    fn write_stamp(&self, _id: FileId) -> u64 {
        0
    }
    fn judge(&self, _key: &SessionKey, op: &Operation) -> Result<Decision, String> {
        let (action, id) = match op {
            Operation::Exec { .. } => (Action::Approve, "deletes"),
            Operation::Connect { port: 22, .. } => (Action::Deny, "no-ssh"),
            Operation::Connect { .. } => (Action::Allow, "web"),
        };
        Ok(Decision {
            action,
            rule: Some(RuleRef {
                index: 0,
                id: id.into(),
            }),
            reason: format!("rule '{id}' matches"),
        })
    }
    fn session_cgroup(&self, key: &SessionKey) -> Option<(String, u64)> {
        Some((format!("/cs/coding/{}", key.session), 77))
    }
    fn launching_user(&self, _key: &SessionKey) -> Option<String> {
        Some("alice".into())
    }
    fn process(&self, pid: u32) -> Process {
        Process {
            pid,
            comm: "agent".into(),
            ..Default::default()
        }
    }
}

struct Bed {
    api: Arc<AgentApi>,
    host: Arc<FakeHost>,
    dir: std::path::PathBuf,
}

impl Drop for Bed {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn bed(name: &str, with_link: bool) -> Bed {
    let dir = std::env::temp_dir().join(format!("cs-api-{}-{name}", std::process::id()));
    let host = Arc::new(FakeHost::default());
    let table = Arc::new(RequestTable::new());
    let link = with_link.then(|| {
        Arc::new(Link::new(
            Config {
                server: "https://127.0.0.1:1".into(),
                ca: "/nonexistent".into(),
                cert: "/nonexistent".into(),
                key: "/nonexistent".into(),
            },
            dir.clone(),
            dir.join("events.jsonl"),
            table.clone(),
            Arc::new(Registry::new(&dir)),
        ))
    });
    let api = Arc::new(AgentApi {
        host: host.clone(),
        table,
        refusals: Arc::new(Refusals::new()),
        bindings: Arc::new(crate::approvals::Bindings::new()),
        link,
    });
    Bed { api, host, dir }
}

fn refusal(session: &str, pid: u32, fp: &str) -> Record {
    serde_json::from_value(serde_json::json!({
        "time": "2026-11-23T15:02:38.904Z", "kind": "exec", "action": "approve",
        "outcome": "refused", "mode": "lsm", "rule": "deletes", "agent": "coding",
        "session": session, "cgroup": null, "cgroup_id": 1, "pid": pid, "tgid": pid,
        "ppid": null, "uid": 0, "gid": 0, "comm": "rm", "binary": "/usr/bin/rm",
        "dev": "254:0", "ino": 247730, "argv": ["rm", "-rf", "/tmp/scratch"],
        "argv_truncated": false, "fingerprint": fp, "grant_id": null,
        "destination": null, "parents": [], "flags": [], "generation": 0
    }))
    .expect("record")
}

async fn ask(api: &AgentApi, pid: u32, line: &str) -> AgentResponse {
    let caller: Caller = api.caller(Some(pid as i32));
    api.handle_line(&caller, line.as_bytes()).await
}

fn error_text(r: AgentResponse) -> String {
    match r {
        AgentResponse::Error { message } => message,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test]
async fn garbage_gets_errors() {
    let b = bed("garbage", false);
    for line in [
        "{",
        "null",
        "42",
        "\u{1}\u{2}",
        r#"{"op":"approve","request_id":"r-1"}"#,
        r#"{"op":"why","session":"s2"}"#,
        r#"{"op":"wait","fingerprint":"x"}"#,
    ] {
        let e = error_text(ask(&b.api, S1_PID, line).await);
        assert!(e.starts_with("bad request"), "{line}: {e}");
    }
    let bytes: &[u8] = &[0xff, 0xfe, b'{'];
    let caller = b.api.caller(Some(S1_PID as i32));
    assert!(matches!(
        b.api.handle_line(&caller, bytes).await,
        AgentResponse::Error { .. }
    ));
    let e = error_text(
        ask(
            &b.api,
            S1_PID,
            r#"{"op":"wait","fingerprint":"xyz","timeout_ms":1}"#,
        )
        .await,
    );
    assert!(e.contains("32 hex digits"), "{e}");
}

#[tokio::test]
async fn callers_outside_sessions_learn_nothing() {
    let b = bed("outside", true);
    let e = error_text(ask(&b.api, OUTSIDE_PID, r#"{"op":"whoami"}"#).await);
    assert_eq!(e, NOT_IN_SESSION);
    let e = error_text(ask(&b.api, 999, r#"{"op":"pending"}"#).await);
    assert!(e.starts_with(NOT_IN_SESSION), "{e}");
    let caller = b.api.caller(None);
    let e = error_text(b.api.handle_line(&caller, br#"{"op":"whoami"}"#).await);
    assert!(e.starts_with(NOT_IN_SESSION), "{e}");
    match ask(&b.api, S2_PID, r#"{"op":"whoami"}"#).await {
        AgentResponse::Whoami {
            agent_group,
            session,
            connected,
        } => assert_eq!(
            (agent_group.as_str(), session.as_str(), connected),
            ("coding", "s2", false)
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn answers_cover_the_callers_session_only() {
    let b = bed("isolation", true);
    b.api.refusals.record(&refusal("s1", S1_PID, RM_FP));
    b.api
        .refusals
        .record(&refusal("s2", S2_PID, "00000000000000aa"));
    b.api.table.opened(
        &SessionKey::new("coding", "s2"),
        "00000000000000aa",
        "r-00000000aa",
        Some("deletes".into()),
        None,
    );
    let AgentResponse::Refusal { refusal: Some(r) } = ask(&b.api, S1_PID, r#"{"op":"why"}"#).await
    else {
        panic!("s1 was refused")
    };
    assert_eq!((r.fingerprint.as_str(), r.pid), (RM_FP, S1_PID));
    assert_eq!(r.operation, "rm -rf /tmp/scratch");
    let request = r.request.expect("an approve refusal becomes a request");
    assert_eq!(
        (request.state.as_str(), request.request_id),
        ("pending", None)
    );
    // Asking about s2's pid from s1 finds nothing.
    let why_other = format!(r#"{{"op":"why","pid":{S2_PID}}}"#);
    assert_eq!(
        ask(&b.api, S1_PID, &why_other).await,
        AgentResponse::Refusal { refusal: None }
    );
    let AgentResponse::Requests { requests } = ask(&b.api, S1_PID, r#"{"op":"pending"}"#).await
    else {
        panic!("requests")
    };
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].fingerprint, RM_FP);
    let AgentResponse::Requests { requests } = ask(&b.api, S2_PID, r#"{"op":"pending"}"#).await
    else {
        panic!("requests")
    };
    assert_eq!(requests[0].request_id.as_deref(), Some("r-00000000aa"));
    // The decision stream does not say what the operation was: the refusal does.
    assert_eq!(requests[0].operation, "rm -rf /tmp/scratch");
}

#[tokio::test]
async fn a_grant_wakes_the_waiter_at_once() {
    let b = bed("wake", true);
    let api = b.api.clone();
    let waiter = tokio::spawn(async move {
        let line = format!(r#"{{"op":"wait","fingerprint":"{RM_FP}","timeout_ms":10000}}"#);
        ask(&api, S1_PID, &line).await
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let key = SessionKey::new("coding", "s1");
    let fp = RM_FP.to_owned();
    let expires = SystemTime::now() + Duration::from_secs(600);
    // What the decision stream does: the kernel grant first, then the table.
    b.host.grants.lock().expect("lock").insert(
        (key.clone(), fp),
        LiveGrant {
            grant_id: 0xab,
            expires_at: expires,
            uses_left: 1,
        },
    );
    let started = Instant::now();
    b.api.table.granted(
        &key,
        RM_FP,
        "r-0123456789",
        GrantInfo {
            grant_id: "00000000000000ab".into(),
            uses: 1,
            expires_at: expires,
            approvers: vec!["alice".into()],
        },
    );
    let resp = waiter.await.expect("waiter");
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "{:?}",
        started.elapsed()
    );
    match resp {
        AgentResponse::Waited {
            outcome:
                WaitOutcome::Granted {
                    grant_id,
                    uses,
                    approvers,
                    ..
                },
        } => {
            assert_eq!((grant_id.as_str(), uses), ("00000000000000ab", 1));
            assert_eq!(approvers, ["alice"]);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn denials_end_waits_unless_a_retry_came_after() {
    let b = bed("deny", true);
    let key = SessionKey::new("coding", "s1");
    b.api.table.closed(
        &key,
        RM_FP,
        "r-1",
        State::Denied,
        Some("bob".into()),
        Some("not today".into()),
    );
    let wait = format!(r#"{{"op":"wait","fingerprint":"{RM_FP}","timeout_ms":100}}"#);
    assert_eq!(
        ask(&b.api, S1_PID, &wait).await,
        AgentResponse::Waited {
            outcome: WaitOutcome::Denied {
                decided_by: "bob".into(),
                reason: "not today".into()
            }
        }
    );
    // Another session waiting on the same operation hears nothing of s1's denial.
    assert_eq!(
        ask(&b.api, S2_PID, &wait).await,
        AgentResponse::Waited {
            outcome: WaitOutcome::TimedOut
        }
    );
    // The agent retried after the denial: that denial is old news.
    std::thread::sleep(Duration::from_millis(2));
    b.api.refusals.record(&refusal("s1", S1_PID, RM_FP));
    assert_eq!(
        ask(&b.api, S1_PID, &wait).await,
        AgentResponse::Waited {
            outcome: WaitOutcome::TimedOut
        }
    );
    b.api
        .table
        .closed(&key, RM_FP, "r-2", State::Expired, None, None);
    assert_eq!(
        ask(&b.api, S1_PID, &wait).await,
        AgentResponse::Waited {
            outcome: WaitOutcome::Expired
        }
    );
}

#[tokio::test]
async fn asks_are_fingerprinted_judged_and_queued() {
    let b = bed("ask", true);
    let line = r#"{"op":"request","exec":{"binary":"/usr/bin/rm","argv":["rm","-rf","/tmp/scratch"]},"reason":"clean up"}"#;
    let AgentResponse::Requested { request } = ask(&b.api, S1_PID, line).await else {
        panic!("requested")
    };
    assert_eq!(request.fingerprint, RM_FP, "the operation's id");
    assert_eq!(
        (request.state.as_str(), request.request_id),
        ("pending", None)
    );
    assert_eq!(request.rule.as_deref(), Some("deletes"));
    let link = b.api.link.as_ref().expect("link");
    assert_eq!(link.forwarder.len(), 1, "queued while the server is away");

    let denied = r#"{"op":"request","connect":{"address":"10.0.0.1","port":22,"protocol":"tcp"},"reason":"x"}"#;
    let e = error_text(ask(&b.api, S1_PID, denied).await);
    assert!(e.contains("asking will not help"), "{e}");
    let allowed = r#"{"op":"request","connect":{"address":"10.0.0.1","port":443,"protocol":"tcp"},"reason":"x"}"#;
    assert!(error_text(ask(&b.api, S1_PID, allowed).await).contains("needs no approval"));
    for bad in [
        r#"{"op":"request","connect":{"address":"db.example","port":5432,"protocol":"tcp"},"reason":"x"}"#,
        r#"{"op":"request","connect":{"address":"10.0.0.1","port":5432,"protocol":"sctp"},"reason":"x"}"#,
        r#"{"op":"request","exec":{"binary":"rm","argv":["rm"]},"reason":"x"}"#,
        r#"{"op":"request","exec":{"binary":"/usr/bin/rm","argv":[]},"reason":"x"}"#,
        r#"{"op":"request","reason":"x"}"#,
    ] {
        let _ = error_text(ask(&b.api, S1_PID, bad).await);
    }
    assert_eq!(link.forwarder.len(), 1);
}

#[tokio::test]
async fn without_a_control_plane_nobody_can_approve_ahead() {
    let b = bed("standalone", false);
    let line = r#"{"op":"request","exec":{"binary":"/usr/bin/rm","argv":["rm"]},"reason":"x"}"#;
    assert!(error_text(ask(&b.api, S1_PID, line).await).contains("no --server"));
}
