//! `cs-loop upload`: how many events per second the control plane stores, from 1, 4 and 16
//! daemons uploading at once, into SQLite and into PostgreSQL — and that none was lost.
//!
//! Every run gets a fresh server and a fresh store (a new SQLite file, a new PostgreSQL
//! database), so that runs do not inherit each other's tables. Rounds go through every
//! configuration in turn, so that whatever else the machine does drifts over all of them.

mod checks;
mod cpu;
mod fleet;
mod report;
mod synth;

use std::{fs, path::PathBuf, time::Duration};

use tests::{
    bench::{guarded, interrupt, Failure},
    control_plane::{ControlPlane, Database},
    env::Mode,
};
use tokio::runtime::Runtime;

use crate::{
    grpc::{self, Pki},
    harness::{self, Bins},
    options::Flags,
    progress,
};

/// Options of `upload`.
pub struct Options {
    pub bins: Bins,
    /// PostgreSQL server (`postgres://…/postgres`); none: SQLite only, said in the report.
    pub postgres: Option<String>,
    pub daemons: Vec<usize>,
    /// Records per run, split evenly between the daemons.
    pub events: u64,
    pub batch: usize,
    pub rounds: usize,
}

impl Options {
    fn parse(args: &[String]) -> Result<Self, Failure> {
        let known = [
            "server", "cli", "postgres", "daemons", "events", "batch", "rounds",
        ];
        let f = Flags::parse("upload", args, &known)?;
        let daemons: Vec<usize> = f.list("daemons", &[1, 4, 16])?;
        if daemons.contains(&0) {
            return Err(Failure::Usage(
                "upload: --daemons: 0 daemons upload nothing".into(),
            ));
        }
        Ok(Self {
            bins: Bins {
                agent: PathBuf::new(),
                server: f.path("server")?,
                cli: f.path("cli")?,
            },
            postgres: f
                .get("postgres")
                .filter(|u| !u.is_empty())
                .map(str::to_owned),
            daemons,
            events: f.num("events", 50_000_u64)?.max(1),
            batch: f.num("batch", 1000_usize)?.clamp(1, 5000),
            rounds: f.num("rounds", 3_usize)?.max(1),
        })
    }
}

/// A store the server runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Store {
    Sqlite,
    /// The PostgreSQL server's URL (a database is created per run).
    Postgres(String),
}

impl Store {
    pub fn name(&self) -> &'static str {
        match self {
            Store::Sqlite => "SQLite",
            Store::Postgres(_) => "PostgreSQL",
        }
    }
}

/// One run's figures.
pub struct Measured {
    pub store: &'static str,
    pub daemons: usize,
    pub events: u64,
    pub elapsed: Duration,
    /// Round trip of every UploadEvents call of the run.
    pub latencies: Vec<Duration>,
    pub found: checks::Found,
    /// CPU time of the server during the upload, when its process was found.
    pub server_cpu: Option<Duration>,
    /// CPU time of the synthetic daemons (this process) during the upload.
    pub client_cpu: Duration,
}

impl Measured {
    pub fn rate(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// `upload …`: every configuration, every round, then the report.
pub fn cmd(args: &[String]) -> Result<(), Failure> {
    let opts = Options::parse(args)?;
    interrupt::install();
    let load = crate::report::load_average();
    let dir = std::env::temp_dir().join(format!("cs-loop-upload-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let data_fs = report::fs_type(&dir);
    // One worker: the client's share of the two cores stays small, the server gets the rest.
    let rt = grpc::runtime(1)?;
    let mut stores = vec![Store::Sqlite];
    match &opts.postgres {
        Some(url) => stores.push(Store::Postgres(url.clone())),
        None => progress("no --postgres URL: SQLite only"),
    }
    let result = all_runs(&opts, &stores, &dir, &rt);
    match &result {
        Ok(_) => {
            let _ = fs::remove_dir_all(&dir);
        }
        Err(_) => eprintln!("cs-loop: files kept in {}", dir.display()),
    }
    let runs = result?;
    let context = report::Context {
        load,
        data_dir: dir,
        data_fs,
        postgres: opts.postgres.as_deref().map(report::postgres_version),
    };
    crate::report::print(&report::markdown(&opts, &context, &runs));
    Ok(())
}

fn all_runs(
    opts: &Options,
    stores: &[Store],
    dir: &std::path::Path,
    rt: &Runtime,
) -> Result<Vec<Measured>, String> {
    let mut runs = Vec::new();
    for round in 0..opts.rounds {
        for store in stores {
            for &n in &opts.daemons {
                interrupt::check()?;
                let m = one_run(opts, store, n, round, dir, rt).map_err(|e| {
                    format!(
                        "{} with {n} daemons, round {}: {e}",
                        store.name(),
                        round + 1
                    )
                })?;
                progress(&format!(
                    "round {}/{}: {} with {n} daemons: {:.0} events/s ({} records in {:.2} s)",
                    round + 1,
                    opts.rounds,
                    m.store,
                    m.rate(),
                    m.events,
                    m.elapsed.as_secs_f64()
                ));
                runs.push(m);
            }
        }
    }
    Ok(runs)
}

/// A fresh server and store, `n` daemons uploading `opts.events` records, the checks.
fn one_run(
    opts: &Options,
    store: &Store,
    n: usize,
    round: usize,
    dir: &std::path::Path,
    rt: &Runtime,
) -> Result<Measured, String> {
    let tag = format!("{}-n{n}-r{round}", store.name().to_lowercase());
    let base = dir.join(&tag);
    let db_name = format!("cs_loop_{}_{}", tag.replace('-', "_"), std::process::id());
    let database = match store {
        Store::Sqlite => Database::Sqlite,
        Store::Postgres(url) => Database::Postgres(harness::postgres_database(url, &db_name)?),
    };
    let env = harness::test_env(&opts.bins, Mode::Fallback, "host");
    let mut cp = guarded("preparing the server", || {
        ControlPlane::new(&env, &base, database)
    })?;
    let result = measure(opts, &mut cp, n, rt);
    let result = result.map_err(|e| format!("{e}\n{}", cp.diagnostics()));
    cp.stop();
    let dropped = match store {
        Store::Postgres(url) => harness::drop_database(url, &db_name),
        Store::Sqlite => Ok(()),
    };
    // The run's own error first: a database left behind is the lesser problem.
    let (run, found) = result?;
    dropped?;
    Ok(Measured {
        store: store.name(),
        daemons: n,
        events: opts.events / n as u64 * n as u64,
        elapsed: run.elapsed,
        latencies: run
            .daemons
            .iter()
            .flat_map(|d| d.latencies.iter().copied())
            .collect(),
        found,
        server_cpu: run.server_cpu,
        client_cpu: run.client_cpu,
    })
}

fn measure(
    opts: &Options,
    cp: &mut ControlPlane,
    n: usize,
    rt: &Runtime,
) -> Result<(fleet::Run, checks::Found), String> {
    let hosts: Vec<String> = (0..n).map(|k| format!("bench-{k}")).collect();
    harness::host_certs(&opts.bins.cli, &cp.certs_dir(), &hosts)?;
    guarded("starting the server", || cp.start())?;
    let per_daemon = (opts.events / n as u64).max(1);
    let logs: Vec<synth::Log> = hosts
        .iter()
        .enumerate()
        .map(|(k, host)| synth::log(k, host, per_daemon, opts.batch))
        .collect();
    let sent: Vec<checks::Sent> = logs
        .iter()
        .map(|l| checks::Sent {
            host: l.host.clone(),
            events: l.events,
            approve: l.approve,
            fingerprints: l.fingerprints,
        })
        .collect();
    let pki = Pki::new(&cp.certs_dir());
    let url = cp.url();
    let server = cpu::server_pid(cp.data_dir());
    let run = rt.block_on(fleet::upload(&url, &pki, logs, server))?;
    let found = rt.block_on(checks::verify(&url, &pki, &sent, &run))?;
    Ok((run, found))
}
