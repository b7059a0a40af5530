//! `cargo xtask`: what cargo cannot do alone — machine setup, test kernels, VM runs, the
//! whole test pipeline and the local demo.

mod artifacts;
mod bench;

mod cpio;
mod demo;
mod init;
mod initramfs;
mod integration;
mod kernel_modules;
mod kernels;
mod libtest;
mod linker;
mod lockup;
mod postgres;
mod private_apt;
mod qemu;
mod runs;
mod setup;
mod stack;
mod stress;
mod test;
mod up;
mod util;
mod vm;

use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};

use kernels::Series;

#[derive(Parser)]
#[command(about = "Countersign developer tasks")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install packages, the nightly toolchain, bpf-linker; mount bpffs/securityfs/tracefs.
    Setup,
    /// Download the test kernels into .cache/kernels/ and print their paths.
    Kernels {
        /// Only these series (default: all).
        #[arg(long = "kernel")]
        kernels: Vec<Series>,
    },
    /// Boot a test kernel with a busybox initramfs and run one command in it.
    Vm {
        /// Kernel series to boot.
        #[arg(long)]
        kernel: Series,
        /// Boot without `bpf` in `lsm=` (the agent must fall back).
        #[arg(long)]
        no_bpf_lsm: bool,
        /// A binary to copy into /bin, as PATH or PATH:NAME.
        #[arg(long = "bin")]
        bins: Vec<String>,
        /// Environment for the command, KEY=VALUE.
        #[arg(long = "env")]
        env: Vec<String>,
        /// Kill the VM after this many seconds.
        #[arg(long, default_value_t = 900)]
        timeout: u64,
        /// The command to run (after `--`).
        #[arg(last = true, required = true)]
        cmd: Vec<String>,
    },
    /// The full test pipeline: lint, unit tests, host (fallback) and VM (LSM) integration tests.
    Test(test::Options),
    /// Build and run the server and the agent (connected over mTLS) in the foreground with
    /// examples/policy.yaml.
    Up,
    /// Play the approval story by itself, narrated (a private server and agent).
    Demo,
    /// Benchmarks (`--suite`): hook overhead against a no-agent baseline (host + 6.1 VM),
    /// approval-loop latency (`approvals`; `chat`: Slack against the CLI in the same run),
    /// event-upload throughput into SQLite and PostgreSQL.
    Bench(bench::Options),
    /// Boot each test kernel and attach/detach the programs many times while other threads
    /// and processes make system calls; report the boots that hung.
    StressAttach(stress::Options),
}

fn main() -> ExitCode {
    match dispatch(Cli::parse().command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(cmd: Cmd) -> Result<ExitCode> {
    let done = match cmd {
        // The only command with its own exit code: it prints a closing summary line.
        Cmd::Test(options) => return test::run(&options),
        Cmd::StressAttach(options) => return stress::run(&options),
        Cmd::Setup => setup::run(),
        Cmd::Kernels { kernels } => kernels::run(if kernels.is_empty() {
            &Series::ALL
        } else {
            &kernels
        }),
        Cmd::Vm {
            kernel,
            no_bpf_lsm,
            bins,
            env,
            timeout,
            cmd,
        } => {
            let spec = initramfs::Spec {
                bins: bins.iter().map(|b| parse_bin(b)).collect(),
                env: env.iter().map(|e| parse_env(e)).collect::<Result<_>>()?,
                cmd,
            };
            let timeout = Duration::from_secs(timeout);
            vm::run_cli(&vm::Vm {
                series: kernel,
                bpf_lsm: !no_bpf_lsm,
                spec,
                timeout,
            })
        }
        Cmd::Up => up::run(),
        Cmd::Demo => demo::run(),
        Cmd::Bench(options) => bench::run(&options),
    };
    done.map(|()| ExitCode::SUCCESS)
}

/// `PATH` or `PATH:NAME`; the name defaults to the file name.
fn parse_bin(arg: &str) -> (PathBuf, String) {
    let (path, name) = match arg.rsplit_once(':') {
        Some((path, name)) if !name.contains('/') => (path, name.to_owned()),
        _ => (arg, arg.rsplit('/').next().unwrap_or(arg).to_owned()),
    };
    (PathBuf::from(path), name)
}

fn parse_env(arg: &str) -> Result<(String, String)> {
    let (k, v) = arg
        .split_once('=')
        .with_context(|| format!("--env {arg}: expected KEY=VALUE"))?;
    Ok((k.to_owned(), v.to_owned()))
}
