//! OCSF 1.3.0 events, one JSON object per line (see docs/audit.md for the full mapping).
//!
//! - `attempt` and `grant_use` records of an exec → Process Activity (1007), Launch;
//! - those of a connect → Network Activity (4001), Open (allowed) or Refuse (refused);
//! - `login` → Authentication (3002), Logon;
//! - everything else → API Activity (6003) on the Countersign control plane.
//!
//! The security-control outcome goes in `action_id`/`disposition_id`, the rule in
//! `firewall_rule`; what OCSF has no place for (approval request, grant, fingerprint, seq,
//! hashes, the record itself) goes in `unmapped.countersign`, which holds the whole
//! record, so nothing is lost in translation.

use std::io::Write;

use serde_json::{json, Map, Value};

use super::ExportError;
use crate::canonical::{to_bytes, EncodeError};
use crate::filter::Filter;
use crate::record::{ActorKind, Kind, Operation, Record};

/// The OCSF schema version the events follow.
pub const OCSF_VERSION: &str = "1.3.0";

/// The OCSF event for one record.
pub fn event(record: &Record) -> Result<Value, ExportError> {
    let s = &record.subject;
    let is_operation = matches!(record.kind, Kind::Attempt | Kind::GrantUse);
    // Only an operation the kernel refused is a failure; a human's "denied" decision is a
    // successful API call whose outcome is in unmapped.
    let refused = is_operation && refused(record);
    let (class_uid, class_name, category_uid, category_name, activity_id, activity_name) =
        match (is_operation, s.operation, record.kind) {
            (true, Some(Operation::Exec), _) => {
                (1007, "Process Activity", 1, "System Activity", 1, "Launch")
            }
            (true, Some(Operation::Connect), _) if refused => {
                (4001, "Network Activity", 4, "Network Activity", 5, "Refuse")
            }
            (true, Some(Operation::Connect), _) => {
                (4001, "Network Activity", 4, "Network Activity", 1, "Open")
            }
            // A process acting on another process, a file system or the kernel: OCSF's
            // Process Activity, "Other".
            (true, Some(Operation::Tamper), _) => {
                (1007, "Process Activity", 1, "System Activity", 99, "Other")
            }
            (_, _, Kind::Login) => (
                3002,
                "Authentication",
                3,
                "Identity & Access Management",
                1,
                "Logon",
            ),
            (_, _, kind) => {
                let (id, name) = api_activity(kind);
                (6003, "API Activity", 6, "Application Activity", id, name)
            }
        };
    let (status_id, status) = if refused {
        (2, "Failure")
    } else {
        (1, "Success")
    };
    let mut e = json!({
        "class_uid": class_uid,
        "class_name": class_name,
        "category_uid": category_uid,
        "category_name": category_name,
        "activity_id": activity_id,
        "activity_name": activity_name,
        "type_uid": class_uid * 100 + activity_id,
        "type_name": format!("{class_name}: {activity_name}"),
        "time": record.time.unix_millis(),
        "severity_id": severity(record).0,
        "severity": severity(record).1,
        "status_id": status_id,
        "status": status,
        "metadata": {
            "version": OCSF_VERSION,
            "uid": record.hash.to_hex(),
            "original_time": record.time.to_string(),
            "log_name": "countersign-audit",
            "product": { "name": "Countersign", "vendor_name": "Countersign" },
        },
        "actor": actor(record),
        "unmapped": { "countersign": serde_json::to_value(record).map_err(EncodeError::from)? },
    });
    let Value::Object(obj) = &mut e else {
        return Ok(e);
    };
    if let Some(host) = &s.host {
        obj.insert(
            "device".into(),
            json!({ "hostname": host, "type_id": 0, "type": "Unknown" }),
        );
    }
    if is_operation && s.decision.is_some() {
        if let Some(rule) = &s.rule {
            obj.insert("firewall_rule".into(), json!({ "uid": rule, "name": rule }));
        }
        let (action_id, action, disposition_id, disposition) = outcome(record);
        obj.insert("action_id".into(), json!(action_id));
        obj.insert("action".into(), json!(action));
        obj.insert("disposition_id".into(), json!(disposition_id));
        obj.insert("disposition".into(), json!(disposition));
        obj.insert("metadata".into(), with_profile(&obj["metadata"]));
    }
    match class_uid {
        1007 => exec_fields(record, obj),
        4001 => connect_fields(record, obj),
        3002 => {
            obj.insert("user".into(), json!({ "name": record.actor.id }));
            obj.insert("service".into(), json!({ "name": "countersign" }));
        }
        _ => {
            obj.insert(
                "api".into(),
                json!({ "operation": record.kind.as_str(), "service": { "name": "countersign" } }),
            );
        }
    }
    Ok(e)
}

/// Writes the selected records as OCSF events, one per line; returns how many.
pub fn write<'a, W: Write>(
    records: impl IntoIterator<Item = &'a Record>,
    filter: &Filter,
    out: W,
) -> Result<u64, ExportError> {
    super::write_lines(records, filter, out, |r| Ok(to_bytes(&event(r)?)))
}

fn exec_fields(record: &Record, obj: &mut Map<String, Value>) {
    let s = &record.subject;
    let mut process = Map::new();
    let name = s
        .binary
        .as_deref()
        .or_else(|| s.argv.as_ref().and_then(|a| a.first().map(String::as_str)))
        .map(|path| path.rsplit('/').next().unwrap_or(path));
    if let Some(name) = name {
        process.insert("name".into(), json!(name));
    }
    if let Some(argv) = &s.argv {
        // Display only: the exact argv is in unmapped.countersign.subject.argv.
        process.insert("cmd_line".into(), json!(argv.join(" ")));
    }
    if let Some(binary) = &s.binary {
        let file_name = binary.rsplit('/').next().unwrap_or(binary);
        process.insert(
            "file".into(),
            json!({ "path": binary, "name": file_name, "type_id": 1 }),
        );
    }
    if let Some(pid) = s.details.get("pid") {
        process.insert("pid".into(), pid.clone());
    }
    obj.insert("process".into(), Value::Object(process));
}

fn connect_fields(record: &Record, obj: &mut Map<String, Value>) {
    let s = &record.subject;
    if let Some(host) = &s.host {
        obj.insert("src_endpoint".into(), json!({ "hostname": host }));
    }
    if let Some(d) = &s.destination {
        obj.insert(
            "dst_endpoint".into(),
            json!({ "ip": d.address, "port": d.port }),
        );
        let mut info =
            json!({ "direction_id": 2, "direction": "Outbound", "protocol_name": d.protocol });
        let version = match d.family.as_str() {
            "ipv4" => Some(4),
            "ipv6" => Some(6),
            _ => None,
        };
        if let (Some(v), Value::Object(m)) = (version, &mut info) {
            m.insert("protocol_ver_id".into(), json!(v));
        }
        obj.insert("connection_info".into(), info);
    }
}

fn actor(record: &Record) -> Value {
    let a = &record.actor;
    let (type_id, kind) = match a.kind {
        ActorKind::Person => (1, "User"),
        ActorKind::Agent => (99, "AI agent"),
        ActorKind::Host | ActorKind::Server => (3, "System"),
    };
    let mut actor = json!({ "user": { "name": a.id, "type_id": type_id, "type": kind } });
    if let (Some(session), Value::Object(m)) = (&record.subject.session, &mut actor) {
        m.insert("session".into(), json!({ "uid": session }));
    }
    actor
}

fn with_profile(metadata: &Value) -> Value {
    let mut m = metadata.clone();
    if let Value::Object(obj) = &mut m {
        obj.insert("profiles".into(), json!(["security_control"]));
    }
    m
}

fn refused(record: &Record) -> bool {
    matches!(
        record.subject.decision.as_deref(),
        Some("refused" | "killed")
    )
}

/// (action_id, action, disposition_id, disposition) of an attempt.
fn outcome(record: &Record) -> (u8, &'static str, u8, &'static str) {
    let audited = record.subject.action.as_deref() == Some("audit");
    match record.subject.decision.as_deref() {
        Some("refused") => (2, "Denied", 2, "Blocked"),
        Some("killed") => (2, "Denied", 2, "Blocked"),
        Some("would_refuse") => (1, "Allowed", 15, "Detected"),
        Some("granted") => (1, "Allowed", 8, "Approved"),
        Some("allowed") if audited => (1, "Allowed", 17, "Logged"),
        Some("allowed") => (1, "Allowed", 1, "Allowed"),
        _ => (0, "Unknown", 0, "Unknown"),
    }
}

fn severity(record: &Record) -> (u8, &'static str) {
    match record.subject.decision.as_deref() {
        Some("refused" | "killed") => (3, "Medium"),
        Some("would_refuse") => (2, "Low"),
        _ => (1, "Informational"),
    }
}

fn api_activity(kind: Kind) -> (u32, &'static str) {
    match kind {
        Kind::Request | Kind::Grant => (1, "Create"),
        Kind::Decision | Kind::PolicyChange | Kind::GrantUse => (3, "Update"),
        _ => (99, "Other"),
    }
}
