//! `countersign audit export`: the trail as JSON Lines, CSV or OCSF, streamed to a file or
//! stdout.

use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;

use countersign_api::pb;

use super::FilterArgs;
use crate::connect::Connection;
use crate::exit::{Failure, Outcome, OK};
use crate::output::errln;

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// JSON Lines: one canonical record per line; the only verifiable format.
    Jsonl,
    /// CSV for spreadsheets.
    Csv,
    /// OCSF 1.3 events for SIEMs.
    Ocsf,
}

/// `audit export` arguments.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: Format,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Write to FILE instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Runs `audit export`.
pub async fn run(conn: &Connection, args: &ExportArgs) -> Outcome {
    if args.format == Format::Jsonl && args.filter.skips_records() {
        errln!(
            "countersign: note: --host/--agent/--session/--rule/--person/--decision leave records out of the \
             middle of the chain, so `audit verify` cannot check this export; unfiltered JSON \
             Lines exports are verifiable, and a time-range one from a checkpoint it starts \
             at (`audit verify --from-checkpoint SEQ`)"
        );
    }
    let format = match args.format {
        Format::Jsonl => pb::ExportFormat::Jsonl,
        Format::Csv => pb::ExportFormat::Csv,
        Format::Ocsf => pb::ExportFormat::Ocsf,
    };
    let request = pb::ExportRequest {
        filter: Some(args.filter.to_pb()),
        format: format as i32,
    };
    let mut stream = conn.audit().export(request).await?.into_inner();
    match &args.output {
        None => {
            let stdout = io::stdout();
            let mut out = io::BufWriter::new(stdout.lock());
            copy(&mut stream, &mut out, "stdout").await?;
        }
        Some(path) => {
            let file = File::create(path)
                .map_err(|e| Failure::refused(format!("{}: {e}", path.display())))?;
            let mut out = io::BufWriter::new(file);
            let result = copy(&mut stream, &mut out, &path.display().to_string()).await;
            match result {
                Ok(bytes) => errln!("wrote {bytes} bytes to {}", path.display()),
                Err(e) => {
                    // A partial export is worse than none: it would verify as a shorter trail.
                    drop(out);
                    let _ = std::fs::remove_file(path);
                    return Err(e);
                }
            }
        }
    }
    Ok(OK)
}

async fn copy<W: Write>(
    stream: &mut tonic::Streaming<pb::ExportChunk>,
    out: &mut W,
    name: &str,
) -> Result<u64, Failure> {
    let mut bytes = 0u64;
    let write_err = |e: io::Error| {
        crate::output::exit_if_broken_pipe(&e);
        Failure::refused(format!("writing {name}: {e}"))
    };
    while let Some(chunk) = stream.message().await? {
        out.write_all(&chunk.data).map_err(write_err)?;
        bytes += chunk.data.len() as u64;
    }
    out.flush().map_err(write_err)?;
    Ok(bytes)
}
