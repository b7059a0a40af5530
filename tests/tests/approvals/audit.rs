//! The auditor's side: exports in three formats, and `audit verify` catching an edited, a
//! removed and a reordered record, naming it, and a cut against the published checkpoints.

use std::fs;

use tests::net::TcpServer;

use crate::{request_id, World};

#[test]
fn exports_verify_and_tampering_is_named() {
    let listener = TcpServer::bind("127.0.0.1", 0);
    let port = listener.port().to_string();
    let net_rule = format!(
        "  - id: db-connect\n    network: {{ cidr: [127.0.0.1/32], ports: [{port}], protocol: tcp }}\n    action: approve\n"
    );
    let w = World::start("audit", "", &net_rule);

    // One exec and one connect story: refused, requested, approved.
    w.t.assert_exec_refused(&w.exec(&["delete", "logs"]));
    let exec_req = request_id(&w.pending_for("alice", &["delete", "logs"]));
    w.cp.cli("alice", &["approve", &exec_req, "--once"])
        .assert_success();
    let refused =
        w.t.probe(&["connect", "tcp", "127.0.0.1", &port])
            .in_cgroup(&w.session)
            .run();
    refused.assert_errno(libc::EPERM);
    let net_req = w.cp.wait_pending("alice", "for the connect", |r| {
        r["operation"]["destination"]["port"].as_u64() == Some(u64::from(listener.port()))
    });
    assert_eq!(
        net_req["operation"]["destination"]["address"], "127.0.0.1",
        "{net_req}"
    );
    w.cp.cli(
        "alice",
        &["deny", &request_id(&net_req), "--reason", "no db"],
    )
    .assert_success();

    // JSON Lines: verifies as exported.
    let file = w.t.path("trail.jsonl");
    let key = w.cp.audit_key();
    w.cp.cli(
        "carol",
        &["audit", "export", "--format", "jsonl", "-o", &file],
    )
    .assert_success();
    let ok =
        w.cp.cli("carol", &["audit", "verify", &file, "--key", &key]);
    ok.assert_success();
    assert!(ok.stdout.starts_with("ok"), "{ok}");
    // Against the checkpoints the server published outside its database as it signed them.
    let published =
        w.cp.data_dir()
            .join("audit-checkpoints.jsonl")
            .display()
            .to_string();
    let ok = w.cp.cli(
        "carol",
        &[
            "audit",
            "verify",
            &file,
            "--key",
            &key,
            "--published",
            &published,
        ],
    );
    ok.assert_success();
    assert!(ok.stdout.contains("published: "), "{ok}");

    let lines: Vec<String> = fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("reading {file}: {e}"))
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(lines.len() > 6, "a short trail: {lines:?}");
    // The export ends with the checkpoint made for it. Without that line the records it
    // signed are not proven: verify says which, and accepts records after an earlier
    // checkpoint only when told to, and a trail no checkpoint covers never.
    let cut = w.t.path("cut.jsonl");
    fs::write(&cut, lines[..lines.len() - 1].join("\n") + "\n")
        .unwrap_or_else(|e| panic!("{cut}: {e}"));
    let verify_cut = |extra: &[&str]| {
        let mut args = vec!["audit", "verify", cut.as_str(), "--key", key.as_str()];
        args.extend_from_slice(extra);
        w.cp.cli("carol", &args)
    };
    let out = verify_cut(&[]);
    out.assert_exit(1);
    let said = format!("{}{}", out.stdout, out.stderr);
    let earlier = lines[..lines.len() - 1]
        .iter()
        .any(|l| l.contains("\"kind\":\"checkpoint\""));
    if earlier {
        assert!(said.contains("NOT PROVEN: records seq"), "{out}");
        verify_cut(&["--allow-unsigned-tail"]).assert_success();
        // Accepted as an unsigned tail, but the checkpoint cut off was published: a cut.
        let out = verify_cut(&["--allow-unsigned-tail", "--published", &published]);
        out.assert_exit(1);
        let said = format!("{}{}", out.stdout, out.stderr);
        assert!(
            said.contains("TAMPERED: the server published a checkpoint at seq"),
            "{out}"
        );
    } else {
        assert!(
            said.contains("NOT PROVEN: no checkpoint signed by this key"),
            "{out}"
        );
        verify_cut(&["--allow-unsigned-tail"]).assert_exit(1);
    }
    let target = lines
        .iter()
        .position(|l| l.contains("\"kind\":\"decision\""))
        .unwrap_or_else(|| panic!("no decision record in {file}"));
    let seq = serde_json::from_str::<serde_json::Value>(&lines[target])
        .ok()
        .and_then(|v| v["seq"].as_u64())
        .unwrap_or_else(|| panic!("no seq in {}", lines[target]));

    let tampered = |name: &str, edit: &dyn Fn(&mut Vec<String>)| {
        let mut copy = lines.clone();
        edit(&mut copy);
        let path = w.t.path(name);
        fs::write(&path, copy.join("\n") + "\n").unwrap_or_else(|e| panic!("{path}: {e}"));
        let out =
            w.cp.cli("carol", &["audit", "verify", &path, "--key", &key]);
        out.assert_exit(1);
        let said = format!("{}{}", out.stdout, out.stderr);
        assert!(said.contains("TAMPERED"), "{name}: {out}");
        said
    };
    let edited = tampered("edited.jsonl", &|l| {
        l[target] = l[target].replace("alice", "mallory");
    });
    assert!(
        edited.contains(&format!("seq {seq}")),
        "the edited record is named: {edited}"
    );
    tampered("removed.jsonl", &|l| {
        l.remove(target);
    });
    tampered("reordered.jsonl", &|l| l.swap(target, target + 1));

    // CSV for spreadsheets, OCSF for SIEMs: exec is Process Activity, connect Network Activity.
    let csv = w.cp.cli("carol", &["audit", "export", "--format", "csv"]);
    csv.assert_success();
    assert!(csv.stdout.lines().count() > 6, "{csv}");
    let ocsf = w.cp.cli("carol", &["audit", "export", "--format", "ocsf"]);
    ocsf.assert_success();
    let classes: Vec<u64> = ocsf
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["class_uid"].as_u64())
        .collect();
    assert!(
        classes.contains(&1007),
        "Process Activity in OCSF: {classes:?}"
    );
    assert!(
        classes.contains(&4001),
        "Network Activity in OCSF: {classes:?}"
    );

    // Only auditors export.
    w.cp.cli("alice", &["audit", "export", "--format", "jsonl"])
        .assert_exit(1);
}
