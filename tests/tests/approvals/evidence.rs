//! Evidence under a flood reaches the auditor: every refusal of a flooding session is in the
//! server's audit trail, as an attempt record or counted in an `events_missing` record.

use std::{
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{World, SESSION};

/// Sum of `details.FIELD` over `records`.
fn sum(records: &[&Value], field: &str) -> u64 {
    records
        .iter()
        .map(|r| r["subject"]["details"][field].as_u64().unwrap_or(0))
        .sum()
}

#[test]
fn a_refusal_flood_is_accounted_for_in_the_audit_trail() {
    let rule = "  - id: no-flood\n    network: { cidr: [127.0.9.10/32] }\n    action: deny\n";
    let w = World::start("flood-evidence", "", rule);
    let flood: u64 = 20_000;
    let out =
        w.t.probe(&["connect-flood", "127.0.9.10", "9", &flood.to_string()])
            .in_cgroup(&w.session)
            .run();
    assert_eq!(
        out.stdout.trim(),
        format!("refused={flood} other=0"),
        "{out}"
    );

    // The session's refusal events are rate-limited, so most never became events; the
    // kernel counted them, the daemon reports the counts, the server audits the increase.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let trail = w.cp.audit();
        let in_session = |r: &&Value| r["subject"]["session"] == SESSION;
        let missing: Vec<&Value> = trail
            .iter()
            .filter(|r| r["kind"] == "events_missing")
            .filter(in_session)
            .collect();
        let attempts = trail
            .iter()
            .filter(|r| r["kind"] == "attempt" && r["subject"]["operation"] == "connect")
            .filter(in_session)
            .count() as u64;
        let counted = sum(&missing, "events_lost") + sum(&missing, "events_limited");
        let refused_total = missing
            .iter()
            .map(|r| {
                r["subject"]["details"]["refused_total"]
                    .as_u64()
                    .unwrap_or(0)
            })
            .max()
            .unwrap_or(0);
        if refused_total >= flood && attempts + counted >= flood {
            assert!(counted > 0, "a flood of {flood} lost nothing? {missing:?}");
            assert_eq!(
                attempts + counted,
                flood,
                "every refusal is a record or a count, once: {attempts} records, {counted} counted"
            );
            assert!(
                missing
                    .iter()
                    .all(|r| r["actor"]["kind"] == "host" && r["subject"]["agent"].is_string()),
                "{missing:?}"
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "after 60 s the trail accounts for {attempts} records and {counted} counted of {flood} refusals (refused_total {refused_total})\n{}",
            w.cp.diagnostics()
        );
        thread::sleep(Duration::from_secs(1));
    }
}
