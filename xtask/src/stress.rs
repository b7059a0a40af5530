//! `cargo xtask stress-attach`: boots each test kernel several times and runs the attach
//! stress tests of the `enforcement` suite (`attach::`) with many cycles: the daemon attaches
//! its programs and is unloaded again, and a perf event on a syscall tracepoint is opened and
//! closed again,
//! while other threads and processes make system calls without pause. Counts the boots that
//! hung (docs/testing.md, "A VM that hangs").

use std::{process::ExitCode, time::Duration};

use anyhow::Result;
use clap::Args;

use crate::{
    integration::{self, Settings, Suite},
    kernels::{self, Series},
    qemu, setup, util,
};

/// Options of `cargo xtask stress-attach`.
#[derive(Args)]
pub struct Options {
    /// Only these kernel series (repeatable; default: every test kernel).
    #[arg(long = "kernel")]
    kernels: Vec<Series>,
    /// Boots of each VM configuration.
    #[arg(long, default_value_t = 1)]
    boots: u32,
    /// Daemon start → refused exec → stop → unload cycles per boot.
    #[arg(long, default_value_t = 10)]
    cycles: u32,
    /// Open/close cycles of a perf event on the `sys_enter_execve` tracepoint per boot.
    #[arg(long, default_value_t = 1500)]
    toggles: u32,
    /// Kill a boot after this many seconds.
    #[arg(long, default_value_t = 1800)]
    timeout: u64,
}

/// What one boot did.
struct Boot {
    label: String,
    hung: bool,
    failure: Option<String>,
    secs: f64,
}

pub fn run(opts: &Options) -> Result<ExitCode> {
    let matrix = integration::vm_matrix(&opts.kernels);
    setup::run()?;
    let series: Vec<Series> = matrix.iter().map(|(s, _)| *s).collect();
    kernels::run(&series)?;
    let bins = integration::build()?;
    let settings = Settings {
        filter: Some("attach::".to_owned()),
        timeout: Duration::from_secs(opts.timeout),
        env: vec![
            (
                "COUNTERSIGN_ATTACH_CYCLES".to_owned(),
                opts.cycles.to_string(),
            ),
            (
                "COUNTERSIGN_TOGGLE_CYCLES".to_owned(),
                opts.toggles.to_string(),
            ),
        ],
        // Each cycle prints a line: a long run is not mistaken for a silent, stuck guest.
        nocapture: true,
    };
    let accel = qemu::accel()?;
    let mut boots = Vec::new();
    for &(series, bpf_lsm) in &matrix {
        let label = if bpf_lsm {
            format!("{series} lsm")
        } else {
            format!("{series} fallback")
        };
        for n in 1..=opts.boots {
            let title = format!("stress-attach: Linux {label}, boot {n}/{}", opts.boots);
            let start = util::heading(&title);
            let (hung, failure) = match integration::in_vm(
                &bins,
                &settings,
                series,
                bpf_lsm,
                &[Suite::Enforcement],
            ) {
                Ok(v) => (v.hung, v.run.failure),
                Err(e) => (false, Some(format!("{e:#}"))),
            };
            util::done(&title, start, failure.is_none());
            boots.push(Boot {
                label: label.clone(),
                hung,
                failure,
                secs: start.elapsed().as_secs_f64(),
            });
        }
    }
    Ok(report(opts, &accel, &boots))
}

/// Prints one line per configuration and the failures; fails when any boot failed.
fn report(opts: &Options, accel: &str, boots: &[Boot]) -> ExitCode {
    println!();
    println!(
        "stress-attach: -accel {accel}, {} daemon cycles and {} trace-event toggles per boot",
        opts.cycles, opts.toggles
    );
    println!("| kernel | boots | hung | other failures | mean boot (s) |");
    println!("|---|---|---|---|---|");
    let mut labels: Vec<&str> = boots.iter().map(|b| b.label.as_str()).collect();
    labels.dedup();
    for label in labels {
        let of: Vec<&Boot> = boots.iter().filter(|b| b.label == label).collect();
        let hung = of.iter().filter(|b| b.hung).count();
        let other = of.iter().filter(|b| !b.hung && b.failure.is_some()).count();
        let mean = of.iter().map(|b| b.secs).sum::<f64>() / of.len() as f64;
        println!("| {label} | {} | {hung} | {other} | {mean:.0} |", of.len());
    }
    let failed: Vec<&Boot> = boots.iter().filter(|b| b.failure.is_some()).collect();
    for b in &failed {
        let why = b.failure.as_deref().unwrap_or_default();
        println!(
            "FAILED: {} ({}): {why}",
            b.label,
            if b.hung { "hung" } else { "failed" }
        );
    }
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
