//! CSV and OCSF outputs checked field by field; filters.

use std::time::{Duration, UNIX_EPOCH};

use serde_json::{json, Value};

use super::*;
use crate::export::{csv as csv_export, ocsf};

/// A chain with an exec attempt (seq 0), a connect attempt (seq 1), a decision (seq 2).
fn three() -> Chain {
    let mut chain = Chain::new(key(), std::num::NonZeroU64::MIN.saturating_add(9), "cs-1");
    chain.append(exec_attempt(), at(0)).expect("exec");
    chain.append(connect_attempt(), at(1500)).expect("connect");
    chain
        .append(decision("alice", "approved"), at(60_000))
        .expect("decision");
    chain
}

fn csv_rows(records: &[Record], filter: &Filter) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    csv_export::write(records, filter, &mut out).expect("csv");
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(out.as_slice());
    reader
        .records()
        .map(|r| r.expect("row").iter().map(str::to_owned).collect())
        .collect()
}

fn cell<'a>(rows: &'a [Vec<String>], row: usize, column: &str) -> &'a str {
    let i = rows[0].iter().position(|c| c == column).expect(column);
    &rows[row][i]
}

#[test]
fn csv_exec_and_connect_field_by_field() {
    let chain = three();
    let r = chain.records();
    let rows = csv_rows(r, &Filter::default());
    assert_eq!(rows[0], csv_export::COLUMNS);
    assert_eq!(rows.len(), 4);
    let exec = [
        ("seq", "0"),
        ("time", "2026-11-23T14:00:00.000Z"),
        ("kind", "attempt"),
        ("actor_kind", "agent"),
        ("actor_id", "coding-agents/s-4242"),
        ("actor_channel", "kernel"),
        ("host", "build-01"),
        ("agent", "coding-agents"),
        ("session", "s-4242"),
        ("operation", "exec"),
        ("rule", "kubectl-mutations"),
        ("action", "approve"),
        ("decision", "refused"),
        ("request_id", "req-7"),
        ("grant_id", ""),
        ("fingerprint", "9a3f00112233aabb"),
        ("binary", "/usr/bin/kubectl"),
        ("argv", r#"["kubectl","delete","pod","web, \"x\""]"#),
        ("dst_address", ""),
        ("dst_port", ""),
        ("details", r#"{"mode":"lsm","pid":4250}"#),
        ("checkpoint_head", ""),
        ("prev", &"0".repeat(64)),
        ("hash", &r[0].hash.to_hex()),
    ];
    for (column, want) in exec {
        assert_eq!(cell(&rows, 1, column), want, "exec {column}");
    }
    let connect = [
        ("seq", "1"),
        ("time", "2026-11-23T14:00:01.500Z"),
        ("operation", "connect"),
        ("rule", "prod-db"),
        ("action", "deny"),
        ("decision", "refused"),
        ("binary", ""),
        ("argv", ""),
        ("dst_address", "10.20.0.5"),
        ("dst_port", "5432"),
        ("dst_protocol", "tcp"),
        ("dst_family", "ipv4"),
        ("details", ""),
        ("prev", &r[0].hash.to_hex()),
        ("hash", &r[1].hash.to_hex()),
    ];
    for (column, want) in connect {
        assert_eq!(cell(&rows, 2, column), want, "connect {column}");
    }
    // A formula planted in free text is neutralized for spreadsheets.
    assert_eq!(cell(&rows, 3, "reason"), "'=HYPERLINK(\"http://evil\")");
}

#[test]
fn ocsf_exec_is_process_activity() {
    let chain = three();
    let r = &chain.records()[0];
    let e = ocsf::event(r).expect("ocsf");
    let want: [(&str, Value); 24] = [
        ("/class_uid", json!(1007)),
        ("/category_uid", json!(1)),
        ("/activity_id", json!(1)),
        ("/type_uid", json!(100701)),
        ("/time", json!(1_795_442_400_000u64)),
        ("/severity_id", json!(3)),
        ("/status_id", json!(2)),
        ("/action_id", json!(2)),
        ("/disposition_id", json!(2)),
        ("/metadata/version", json!("1.3.0")),
        ("/metadata/uid", json!(r.hash.to_hex())),
        ("/metadata/profiles/0", json!("security_control")),
        ("/metadata/original_time", json!("2026-11-23T14:00:00.000Z")),
        ("/device/hostname", json!("build-01")),
        ("/actor/user/name", json!("coding-agents/s-4242")),
        ("/actor/session/uid", json!("s-4242")),
        ("/process/name", json!("kubectl")),
        ("/process/cmd_line", json!("kubectl delete pod web, \"x\"")),
        ("/process/file/path", json!("/usr/bin/kubectl")),
        ("/process/pid", json!(4250)),
        ("/firewall_rule/uid", json!("kubectl-mutations")),
        ("/unmapped/countersign/subject/request_id", json!("req-7")),
        (
            "/unmapped/countersign/subject/fingerprint",
            json!("9a3f00112233aabb"),
        ),
        ("/unmapped/countersign/seq", json!(0)),
    ];
    for (path, value) in want {
        assert_eq!(e.pointer(path), Some(&value), "{path}");
    }
    assert_eq!(e.get("dst_endpoint"), None);
}

#[test]
fn ocsf_connect_is_network_activity() {
    let chain = three();
    let r = &chain.records()[1];
    let e = ocsf::event(r).expect("ocsf");
    let want: [(&str, Value); 14] = [
        ("/class_uid", json!(4001)),
        ("/category_uid", json!(4)),
        ("/activity_id", json!(5)),
        ("/activity_name", json!("Refuse")),
        ("/type_uid", json!(400105)),
        ("/action_id", json!(2)),
        ("/disposition", json!("Blocked")),
        ("/dst_endpoint/ip", json!("10.20.0.5")),
        ("/dst_endpoint/port", json!(5432)),
        ("/src_endpoint/hostname", json!("build-02")),
        ("/connection_info/protocol_name", json!("tcp")),
        ("/connection_info/direction_id", json!(2)),
        ("/connection_info/protocol_ver_id", json!(4)),
        ("/firewall_rule/uid", json!("prod-db")),
    ];
    for (path, value) in want {
        assert_eq!(e.pointer(path), Some(&value), "{path}");
    }
    assert_eq!(e.get("process"), None);

    // A decision is API activity; its verdict stays in unmapped.
    let d = ocsf::event(&chain.records()[2]).expect("ocsf");
    assert_eq!(d["class_uid"], 6003);
    assert_eq!(d["activity_id"], 3);
    assert_eq!(d["api"]["operation"], "decision");
    assert_eq!(d["status_id"], 1);
    assert_eq!(d["actor"]["user"]["type_id"], 1);
    assert_eq!(
        d["unmapped"]["countersign"]["subject"]["decision"],
        "approved"
    );
    assert_eq!(d.get("action_id"), None);
}

#[test]
fn filters_select_records() {
    let chain = chain(50, 10);
    let r = chain.records();
    let count = |f: Filter| {
        let mut out = Vec::new();
        jsonl::write(r, &f, &mut out).expect("export")
    };
    assert_eq!(count(Filter::default()), 55);
    assert_eq!(
        count(Filter {
            host: Some("build-02".into()),
            ..Filter::default()
        }),
        10
    );
    assert_eq!(
        count(Filter {
            agent: Some("coding-agents".into()),
            ..Filter::default()
        }),
        20
    );
    assert_eq!(
        count(Filter {
            rule: Some("prod-db".into()),
            ..Filter::default()
        }),
        10
    );
    assert_eq!(
        count(Filter {
            person: Some("alice".into()),
            ..Filter::default()
        }),
        10
    );
    assert_eq!(
        count(Filter {
            decision: Some("approved".into()),
            ..Filter::default()
        }),
        10
    );
    let since = UNIX_EPOCH + Duration::from_millis(1_795_442_400_000 + 10 * 250);
    let until = since + Duration::from_millis(5 * 250);
    // Entries 10..15 (checkpoints share the time of the entry that triggered them: +1 at 10).
    assert_eq!(
        count(Filter {
            since: Some(since),
            until: Some(until),
            ..Filter::default()
        }),
        5
    );
    let both = Filter {
        rule: Some("prod-db".into()),
        person: Some("alice".into()),
        ..Filter::default()
    };
    assert_eq!(count(both), 0);
}
