//! The approvals report: the two latencies with their targets, the second one broken down,
//! what was checked, one summary line per figure.

use std::{fmt::Write as _, time::Duration};

use tests::bench::report::verdict;

use super::{Iteration, Options, Sample, POLL_PAUSE};
use crate::{
    report::machine,
    stats::{ms, Percentiles},
};

/// Target p99 of both latencies.
const TARGET_P99: Duration = Duration::from_millis(50);

/// The markdown report.
pub fn markdown(opts: &Options, load: &str, samples: &[Sample], its: &[Iteration]) -> String {
    let n = samples.len();
    let pick =
        |f: fn(&Sample) -> Duration| Percentiles::of(&samples.iter().map(f).collect::<Vec<_>>());
    let visible = pick(|s| s.visible);
    let retry = pick(|s| s.retry);
    // The server's audit time of each request splits `visible` in two (ms precision).
    let measured = &its[its.len().saturating_sub(n)..];
    let (mut uplink, mut listed) = (Vec::new(), Vec::new());
    for (s, it) in samples.iter().zip(measured) {
        if let Some(received) = it.received_at {
            let up = received.duration_since(it.refused_at).unwrap_or_default();
            uplink.push(up);
            listed.push(s.visible.saturating_sub(up));
        }
    }
    let mut r = String::new();
    let _ = writeln!(
        r,
        "## Approval loop: {} ({} mode)\n\n{}. `countersign-server` (SQLite) and \
         `countersign-agent` on this machine, linked by mutual TLS over loopback. {n} \
         iterations after {} warm-up ones, each: a stand-in AI agent (one process living in \
         the session, which forks every exec there) runs `guarded req-i` (a copy of /bin/true, \
         rule `args: [\"*\"]`: a new request every time), refused → the approver's \
         ListPending, polled every {} ms over one mTLS channel, shows the request → the \
         stand-in waits on the agent socket → Decide (approve once) → the wait answers \
         `granted` → the stand-in runs `guarded req-i` again, which passes.\n",
        opts.env,
        opts.mode.as_str(),
        machine(load),
        opts.warmup,
        POLL_PAUSE.as_millis(),
    );
    r.push_str(
        "| latency | p50 | p90 | p99 | max | target | |\n|---|---:|---:|---:|---:|---|---|\n",
    );
    let rows = [
        ("refusal → request visible to the approver", visible, true),
        (
            "↳ refusal → upload received by the server",
            Percentiles::of(&uplink),
            false,
        ),
        (
            "↳ received → in the approver's ListPending",
            Percentiles::of(&listed),
            false,
        ),
        ("approval → retry passes", retry, true),
        (
            "↳ Decide call (the approver's round trip)",
            pick(|s| s.decide),
            false,
        ),
        (
            "↳ Decide returned → the wait answers `granted`",
            pick(|s| s.delivered),
            false,
        ),
        ("↳ `granted` → retry exec ended", pick(|s| s.exec), false),
        (
            "for comparison: the refused exec",
            pick(|s| s.refused_exec),
            false,
        ),
        (
            "for comparison: /bin/true in the session",
            pick(|s| s.plain_exec),
            false,
        ),
    ];
    for (label, p, target) in rows {
        let (t, v) = if target {
            (
                format!("p99 ≤ {}", ms(TARGET_P99)),
                verdict(p.p99 <= TARGET_P99),
            )
        } else {
            (String::new(), "")
        };
        let _ = writeln!(
            r,
            "| {label} | {} | {} | {} | {} | {t} | {v} |",
            ms(p.p50),
            ms(p.p90),
            ms(p.p99),
            ms(p.max)
        );
    }
    let total = its.len();
    let _ = writeln!(
        r,
        "\nRefusal: from the moment the stand-in agent saw its exec refused (fallback: the \
         child killed before its image ran; LSM: execve failed with EPERM). Retry: from the moment Decide was sent until \
         the retried exec had exited 0. Percentiles are nearest-rank over the {n} measured \
         iterations. The split of the first latency uses the time of the request's audit \
         record (the server's clock, the same as ours, in whole milliseconds).\n\nChecks \
         (all {total} iterations, warm-up included): every refusal became exactly one \
         request, seen by the approver with 1 attempt; the event log has one refusal and one `granted` retry per iteration, through the grant its approval issued; \
         the audit trail has exactly one `attempt` (refused), `request`, `decision`, `grant` \
         and `grant_use` per iteration and no other request; nothing is left pending.\n"
    );
    for (label, p) in [
        ("refusal → request visible", visible),
        ("approval → retry passes", retry),
    ] {
        let _ = writeln!(
            r,
            "- {label}: p50 {}, p99 {} (target p99 ≤ {}: {})",
            ms(p.p50),
            ms(p.p99),
            ms(TARGET_P99),
            verdict(p.p99 <= TARGET_P99)
        );
    }
    r
}
