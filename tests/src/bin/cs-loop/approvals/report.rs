//! The approvals report: per approver path (CLI, Slack), the two latencies with their
//! targets, broken down; with both paths, Slack against the CLI of the same run; what was
//! checked, one summary line per figure.

use std::{fmt::Write as _, time::Duration};

use tests::bench::report::verdict;

use super::{Iteration, Options, Sample, Via, POLL_PAUSE};
use crate::{
    report::machine,
    stats::{ms, Percentiles},
};

/// Target p99 of both latencies on the CLI path.
const TARGET_P99: Duration = Duration::from_millis(50);
/// Slack: the message within a second of the refusal (p99).
const SLACK_VISIBLE_P99: Duration = Duration::from_secs(1);
/// Slack: the retry's p99 at most this above the CLI's in the same run.
const SLACK_RETRY_MARGIN: Duration = Duration::from_millis(50);

/// The figures of one path.
struct Figures {
    via: Via,
    n: usize,
    visible: Percentiles,
    /// Refusal → the server received the upload (its audit time of the request).
    uplink: Percentiles,
    /// Received → visible.
    shown: Percentiles,
    retry: Percentiles,
    decide: Percentiles,
    delivered: Percentiles,
    exec: Percentiles,
    refused_exec: Percentiles,
    plain_exec: Percentiles,
}

impl Figures {
    /// The figures of the measured iterations of `via` (`None`: there were none).
    fn of(via: Via, samples: &[Sample], its: &[Iteration]) -> Option<Self> {
        // The measured iterations are the last ones, in the order of the samples.
        let measured = &its[its.len().saturating_sub(samples.len())..];
        let mine: Vec<(&Sample, &Iteration)> = samples
            .iter()
            .zip(measured)
            .filter(|(s, _)| s.via == via)
            .collect();
        if mine.is_empty() {
            return None;
        }
        let pick = |f: fn(&Sample) -> Duration| {
            Percentiles::of(&mine.iter().map(|(s, _)| f(s)).collect::<Vec<_>>())
        };
        // The server's audit time of each request splits `visible` in two (ms precision).
        let (mut uplink, mut shown) = (Vec::new(), Vec::new());
        for (s, it) in &mine {
            if let Some(received) = it.received_at {
                let up = received.duration_since(it.refused_at).unwrap_or_default();
                uplink.push(up);
                shown.push(s.visible.saturating_sub(up));
            }
        }
        Some(Self {
            via,
            n: mine.len(),
            visible: pick(|s| s.visible),
            uplink: Percentiles::of(&uplink),
            shown: Percentiles::of(&shown),
            retry: pick(|s| s.retry),
            decide: pick(|s| s.decide),
            delivered: pick(|s| s.delivered),
            exec: pick(|s| s.exec),
            refused_exec: pick(|s| s.refused_exec),
            plain_exec: pick(|s| s.plain_exec),
        })
    }

    /// The p99 targets of `visible` and `retry` as (text, limit); Slack's retry target needs
    /// the CLI's figure of the same run.
    fn targets(&self, cli: Option<&Figures>) -> [Option<(String, Duration)>; 2] {
        let within = |d: Duration| Some((format!("p99 ≤ {}", ms(d)), d));
        match self.via {
            Via::Cli => [within(TARGET_P99), within(TARGET_P99)],
            Via::Slack => [
                within(SLACK_VISIBLE_P99),
                cli.map(|c| {
                    let limit = c.retry.p99 + SLACK_RETRY_MARGIN;
                    (
                        format!(
                            "p99 ≤ the CLI's + {} = {}",
                            ms(SLACK_RETRY_MARGIN),
                            ms(limit)
                        ),
                        limit,
                    )
                }),
            ],
        }
    }

    /// The table of this path.
    fn table(&self, cli: Option<&Figures>, r: &mut String) {
        let [visible_target, retry_target] = self.targets(cli);
        let (visible, shown, retry, call, delivered) = match self.via {
            Via::Cli => (
                "refusal → request visible to the approver",
                "↳ received → in the approver's ListPending",
                "approval → retry passes",
                "↳ Decide call (the approver's round trip)",
                "↳ Decide returned → the wait answers `granted`",
            ),
            Via::Slack => (
                "refusal → request's message in Slack",
                "↳ received → `chat.postMessage` arrived",
                "click → retry passes",
                "↳ the click's POST (acknowledged before the decision)",
                "↳ POST answered → the wait answers `granted`",
            ),
        };
        r.push_str(
            "| latency | p50 | p90 | p99 | max | target | |\n|---|---:|---:|---:|---:|---|---|\n",
        );
        let rows = [
            (visible, self.visible, visible_target),
            (
                "↳ refusal → upload received by the server",
                self.uplink,
                None,
            ),
            (shown, self.shown, None),
            (retry, self.retry, retry_target),
            (call, self.decide, None),
            (delivered, self.delivered, None),
            ("↳ `granted` → retry exec ended", self.exec, None),
            ("for comparison: the refused exec", self.refused_exec, None),
            (
                "for comparison: /bin/true in the session",
                self.plain_exec,
                None,
            ),
        ];
        for (label, p, target) in rows {
            let (t, v) = target.map_or((String::new(), ""), |(text, limit)| {
                (text, verdict(p.p99 <= limit))
            });
            let _ = writeln!(
                r,
                "| {label} | {} | {} | {} | {} | {t} | {v} |",
                ms(p.p50),
                ms(p.p90),
                ms(p.p99),
                ms(p.max)
            );
        }
    }

    /// One summary line per latency.
    fn summary(&self, cli: Option<&Figures>, r: &mut String) {
        let [visible_target, retry_target] = self.targets(cli);
        let name = match self.via {
            Via::Cli => "",
            Via::Slack => "Slack, ",
        };
        for (label, p, target) in [
            ("refusal → request visible", self.visible, visible_target),
            ("approval → retry passes", self.retry, retry_target),
        ] {
            let target = target.map_or("no target: no CLI figure in this run".into(), |(t, l)| {
                format!("target {t}: {}", verdict(p.p99 <= l))
            });
            let _ = writeln!(
                r,
                "- {name}{label}: p50 {}, p99 {} ({target})",
                ms(p.p50),
                ms(p.p99),
            );
        }
    }
}

/// The markdown report.
pub fn markdown(opts: &Options, load: &str, samples: &[Sample], its: &[Iteration]) -> String {
    let n = samples.len();
    let paths: Vec<Figures> = opts
        .vias
        .iter()
        .filter_map(|&via| Figures::of(via, samples, its))
        .collect();
    let cli = paths.iter().find(|f| f.via == Via::Cli);
    let slack = paths.iter().find(|f| f.via == Via::Slack);
    let both = cli.is_some() && slack.is_some();
    let (title, sees, approves) = steps(cli.is_some(), slack.is_some());
    let mut r = String::new();
    let _ = writeln!(
        r,
        "## Approval loop{title}: {} ({} mode)\n\n{}. `countersign-server` (SQLite) and \
         `countersign-agent` on this machine, linked by mutual TLS over loopback. {n} \
         iterations after {} warm-up ones, each: a stand-in AI agent (one process living in \
         the session, which forks every exec there) runs `guarded req-i` (a copy of /bin/true, \
         rule `args: [\"*\"]`: a new request every time), refused → {sees} → the stand-in \
         waits on the agent socket → {approves} → the wait answers `granted` → the stand-in \
         runs `guarded req-i` again, which passes.\n",
        opts.env,
        opts.mode.as_str(),
        machine(load),
        opts.warmup,
    );
    if both {
        r.push_str(
            "The iterations alternate between the two paths (interleaved, so that whatever \
             else the machine does hits both alike). The server has Slack configured in both \
             cases: it posts every request to Slack and updates its message, the CLI \
             iterations' too.\n\n",
        );
    }
    for f in &paths {
        if slack.is_some() {
            let heading = match f.via {
                Via::Cli => "The approver on the CLI (gRPC)",
                Via::Slack => "The approver in Slack",
            };
            let _ = writeln!(r, "### {heading}: {} iterations\n", f.n);
        }
        f.table(cli, &mut r);
        r.push('\n');
    }
    if let (Some(c), Some(s)) = (cli, slack) {
        r.push_str(
            "### Slack against the CLI, same run\n\n| latency | CLI p50 | Slack p50 | Slack / CLI \
             | CLI p99 | Slack p99 | Slack / CLI |\n|---|---:|---:|---:|---:|---:|---:|\n",
        );
        for (label, c, s) in [
            ("refusal → request visible", c.visible, s.visible),
            ("approval → retry passes", c.retry, s.retry),
        ] {
            let _ = writeln!(
                r,
                "| {label} | {} | {} | {} | {} | {} | {} |",
                ms(c.p50),
                ms(s.p50),
                ratio(s.p50, c.p50),
                ms(c.p99),
                ms(s.p99),
                ratio(s.p99, c.p99)
            );
        }
        r.push('\n');
    }
    let total = its.len();
    let (decide, slack_notes) = if slack.is_some() {
        (
            "Decide (the click)",
            " Slack: the local Slack (the control plane's test peer, in this process, on \
         loopback) notes when each call arrives; the click is the POST Slack would send, signed \
         with the app's signing secret, and the endpoint acknowledges it before it decides.",
        )
    } else {
        ("Decide", "")
    };
    let slack_checks = if slack.is_some() {
        "; every decision came through its path's channel (`slack` for a click) and, after each \
         Slack iteration, the request's message was updated to \"Approved by alice via slack\""
    } else {
        ""
    };
    let _ = writeln!(
        r,
        "Refusal: from the moment the stand-in agent saw its exec refused (fallback: the \
         child killed before its image ran; LSM: execve failed with EPERM). Retry: from the \
         moment {decide} was sent until the retried exec had exited 0. Percentiles \
         are nearest-rank over the measured iterations of each path. The split of the first \
         latency uses the time of the request's audit record (the server's clock, the same as \
         ours, in whole milliseconds).{slack_notes}\n\nChecks (all {total} iterations, warm-up \
         included): every refusal became exactly one request, seen by the approver with 1 \
         attempt; the event log has one refusal and one `granted` retry per iteration, through \
         the grant its approval issued; the audit trail has exactly one `attempt` (refused), \
         `request`, `decision`, `grant` and `grant_use` per iteration and no other \
         request{slack_checks}; nothing is left pending.\n"
    );
    for f in &paths {
        f.summary(cli, &mut r);
    }
    r
}

/// The title's addition, how the approver sees a request and how she approves it.
fn steps(cli: bool, slack: bool) -> (&'static str, String, String) {
    let poll = format!(
        "polled every {} ms over one mTLS channel",
        POLL_PAUSE.as_millis()
    );
    let message = "its message reaches the approvers' channel of a local Slack";
    let click = "a click on Approve once, POSTed to the server's interactivity endpoint as \
                 Slack does";
    match (cli, slack) {
        (true, true) => (
            ", the CLI against Slack",
            format!("the approver sees the request (CLI: ListPending, {poll}; Slack: {message})"),
            format!("she approves once (CLI: Decide; Slack: {click})"),
        ),
        (false, true) => (
            ", the approver in Slack",
            format!("the request: {message}"),
            click.to_owned(),
        ),
        _ => (
            "",
            format!("the approver's ListPending, {poll}, shows the request"),
            "Decide (approve once)".to_owned(),
        ),
    }
}

/// `2.35×` (`–` without a baseline).
fn ratio(x: Duration, base: Duration) -> String {
    if base.is_zero() {
        return "–".into();
    }
    format!("{:.2}×", x.as_secs_f64() / base.as_secs_f64())
}
