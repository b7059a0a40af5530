//! The upload report: events/s per store and number of daemons (median over the rounds, with
//! their range), UploadEvents round trips, PostgreSQL against SQLite, the target, the checks.

use std::{fmt::Write as _, path::PathBuf, process::Command, time::Duration};

use tests::bench::{report::verdict, stats::median};

use super::{synth::FINGERPRINTS, Measured, Options};
use crate::{
    report::machine,
    stats::{ms, thousands, Percentiles},
};

/// Target throughput into SQLite, events/s.
const TARGET: f64 = 20_000.0;

/// What the report says about the set-up.
pub struct Context {
    /// Load average before the run.
    pub load: String,
    /// Where the SQLite files were (its file system matters: fsync).
    pub data_dir: PathBuf,
    /// That directory's file system, from [`fs_type`] (read while it exists).
    pub data_fs: String,
    /// PostgreSQL's version, when a server was given.
    pub postgres: Option<String>,
}

/// `SHOW server_version` of the server at `url` (`unknown version` when psql cannot tell).
pub fn postgres_version(url: &str) -> String {
    Command::new("psql")
        .arg(url)
        .args(["-tAc", "SHOW server_version"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "unknown version".to_owned())
}

/// The markdown report.
pub fn markdown(opts: &Options, ctx: &Context, runs: &[Measured]) -> String {
    let mut r = String::new();
    let pg = match &ctx.postgres {
        Some(v) => format!("PostgreSQL {v} on this machine (a new database per run)"),
        None => "PostgreSQL: not measured (no server given)".to_owned(),
    };
    let _ = writeln!(
        r,
        "## Event upload into the control plane\n\n{}. `countersign-server` on this machine, a \
         fresh server and store per run: SQLite in {} ({}); {pg}. N synthetic daemons, each \
         with its own host certificate and mTLS connection, Register, then UploadEvents of \
         {} records at a time, the next batch once the previous one is acknowledged (as the \
         daemon's uplink does); {} records per run in all, realistic ones (argv, a 3-process \
         parent chain; 60 % audited execs, 15 % audited connects, 5 % denied connects, 20 % \
         execs refused by an approve rule over {FINGERPRINTS} operations per daemon, which \
         open {FINGERPRINTS} requests and join them). {} round(s), configurations interleaved; \
         the median and the range over the rounds.\n",
        machine(&ctx.load),
        ctx.data_dir.display(),
        ctx.data_fs,
        opts.batch,
        thousands(opts.events),
        opts.rounds,
    );
    r.push_str(
        "| store | daemons | records per run | events/s (median) | range | UploadEvents \
         p50 / p99 | server CPU per event | client CPU | vs SQLite |\n\
         |---|---:|---:|---:|---|---|---:|---:|---:|\n",
    );
    let mut summary = Vec::new();
    for store in ["SQLite", "PostgreSQL"] {
        for &n in &opts.daemons {
            let of: Vec<&Measured> = runs
                .iter()
                .filter(|m| m.store == store && m.daemons == n)
                .collect();
            let Some(first) = of.first() else { continue };
            let rates: Vec<f64> = of.iter().map(|m| m.rate()).collect();
            let rate = median(&rates);
            let (lo, hi) = rates
                .iter()
                .fold((f64::INFINITY, 0.0_f64), |(l, h), &x| (l.min(x), h.max(x)));
            let lat: Vec<Duration> = of
                .iter()
                .flat_map(|m| m.latencies.iter().copied())
                .collect();
            let p = Percentiles::of(&lat);
            let sqlite = sqlite_rate(runs, n);
            let ratio = match (store, sqlite) {
                ("PostgreSQL", Some(s)) if s > 0.0 => format!("{:.2}×", rate / s),
                _ => String::new(),
            };
            let per_event: Vec<f64> = of
                .iter()
                .filter_map(|m| m.server_cpu)
                .zip(of.iter())
                .map(|(c, m)| c.as_secs_f64() * 1e6 / m.events.max(1) as f64)
                .collect();
            let server = if per_event.is_empty() {
                "?".to_owned()
            } else {
                format!("{:.0} µs", median(&per_event))
            };
            let client: Vec<f64> = of
                .iter()
                .map(|m| m.client_cpu.as_secs_f64() / m.elapsed.as_secs_f64().max(1e-9) * 100.0)
                .collect();
            let _ = writeln!(
                r,
                "| {store} | {n} | {} | {} | {} – {} | {} / {} | {server} | {:.0} % | {ratio} |",
                thousands(first.events),
                thousands(rate.round() as u64),
                thousands(lo.round() as u64),
                thousands(hi.round() as u64),
                ms(p.p50),
                ms(p.p99),
                median(&client),
            );
            summary.push(if store == "SQLite" {
                format!(
                    "- upload into SQLite, {n} daemon(s): {} events/s (target ≥ {}: {})",
                    thousands(rate.round() as u64),
                    thousands(TARGET as u64),
                    verdict(rate >= TARGET)
                )
            } else {
                format!(
                    "- upload into PostgreSQL, {n} daemon(s): {} events/s ({ratio} SQLite)",
                    thousands(rate.round() as u64)
                )
            });
        }
    }
    let stored: u64 = runs.iter().map(|m| m.found.attempts).sum();
    let requests: u64 = runs.iter().map(|m| m.found.requests).sum();
    let _ = writeln!(
        r,
        "\nevents/s: records of the run / time from the moment every daemon was registered \
         until the last acknowledgement. Server CPU per event: the server process's user + \
         system time meanwhile / records (PostgreSQL's own processes not included); client \
         CPU: the synthetic daemons' CPU time / wall time (100 % = one core of the machine's). \
         Target: ≥ {} events/s into SQLite.\n\nChecks (every \
         run): each daemon's last ack is its last sequence and Register resumes there; the \
         audit trail holds exactly one `attempt` per record sent ({} in all runs); the \
         refusals opened exactly one request per operation ({} in all runs), pending, whose \
         attempts add up to the refusals sent.\n",
        thousands(TARGET as u64),
        thousands(stored),
        thousands(requests),
    );
    r.push_str(&summary.join("\n"));
    r.push('\n');
    r
}

/// The SQLite median for `n` daemons.
fn sqlite_rate(runs: &[Measured], n: usize) -> Option<f64> {
    let rates: Vec<f64> = runs
        .iter()
        .filter(|m| m.store == "SQLite" && m.daemons == n)
        .map(Measured::rate)
        .collect();
    (!rates.is_empty()).then(|| median(&rates))
}

/// The file system `path` is on, by name for the usual ones.
pub fn fs_type(path: &std::path::Path) -> String {
    use std::os::unix::ffi::OsStrExt as _;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return "unknown file system".into();
    };
    // SAFETY: a zeroed statfs is a valid out-buffer; `c` is NUL-terminated.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid path and buffer.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return "unknown file system".into();
    }
    // f_type is a signed or unsigned word depending on the architecture.
    let magic = st.f_type as u64;
    match magic {
        0xEF53 => "ext4".into(),
        0x0102_1994 => "tmpfs".into(),
        0x5846_5342 => "xfs".into(),
        0x9123_683E => "btrfs".into(),
        0x794C_7630 => "overlayfs".into(),
        other => format!("file system 0x{other:x}"),
    }
}
