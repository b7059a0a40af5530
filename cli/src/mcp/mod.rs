//! `countersign mcp`: an MCP server on stdio for AI agents, launched by the agent's MCP
//! client inside its session. Its tools map onto the daemon's agent socket like
//! `countersign request` does: they ask for approval, list the session's requests and wait
//! for decisions. None approves anything.
//!
//! stdout carries JSON-RPC messages only, one per line; logs go to stderr. Tool calls run on
//! their own threads (a `wait_for_decision` may block for an hour while `ping` and other
//! calls are still answered); end of stdin ends the server with status 0, once the calls
//! still running have answered or a few seconds passed.

mod arguments;
mod call;
mod jsonrpc;
mod methods;
mod tools;

use std::io::{self, BufRead, Write};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::Value;

use crate::agent_side::socket;
use crate::exit::{Failure, Outcome, OK};
use jsonrpc::{Frame, Parsed};
use methods::Server;

/// `mcp` arguments (none: the MCP client configures nothing but the command line).
#[derive(Debug, clap::Args)]
pub struct McpArgs {}

/// Tool calls running at once; beyond, a call is answered before the next line is read.
const MAX_CALLS_IN_FLIGHT: usize = 16;
/// How long calls still running at the end of stdin may take to answer before we exit
/// (a quick call is answered; a wait for a decision is abandoned).
const DRAIN: Duration = Duration::from_secs(5);

/// Serves MCP on stdin/stdout until stdin ends.
pub fn run(_args: &McpArgs) -> Outcome {
    let server = Arc::new(Server::new(socket::path()));
    let output = Arc::new(Mutex::new(io::stdout()));
    serve(&server, &mut io::stdin().lock(), &output)
}

/// Reads messages from `input` and writes the answers to `output`, each one line.
fn serve<W: Write + Send + 'static>(
    server: &Arc<Server>,
    input: &mut impl BufRead,
    output: &Arc<Mutex<W>>,
) -> Outcome {
    let calls = Arc::new(InFlight::default());
    loop {
        let line = match jsonrpc::read_frame(input) {
            Ok(Frame::Line(line)) => line,
            Ok(Frame::TooLong) => {
                let why = format!("message longer than {} bytes", jsonrpc::MAX_LINE);
                send(
                    output,
                    &jsonrpc::error(&Value::Null, jsonrpc::INVALID_REQUEST, why),
                );
                continue;
            }
            Ok(Frame::Eof) => {
                calls.drain(DRAIN);
                return Ok(OK);
            }
            Err(e) => return Err(Failure::refused(format!("reading stdin: {e}"))),
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let message = match jsonrpc::parse(&line) {
            Parsed::Message(message) => message,
            Parsed::Reply(reply) => {
                send(output, &reply);
                continue;
            }
            Parsed::Ignore => continue,
        };
        if methods::is_tool_call(&message) && calls.try_begin() {
            let (server, output, running) = (server.clone(), output.clone(), calls.clone());
            let job = message.clone();
            let spawned = thread::Builder::new()
                .name("mcp-tool-call".into())
                .spawn(move || {
                    if let Some(answer) = server.answer(&job) {
                        send(&output, &answer);
                    }
                    running.end();
                });
            match spawned {
                Ok(_) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot start a thread for a tool call");
                    calls.end();
                }
            }
        }
        if let Some(answer) = server.answer(&message) {
            send(output, &answer);
        }
    }
}

/// The number of tool calls running on their own threads.
#[derive(Default)]
struct InFlight {
    count: Mutex<usize>,
    ended: Condvar,
}

impl InFlight {
    /// Counts one more call, unless [`MAX_CALLS_IN_FLIGHT`] already run.
    fn try_begin(&self) -> bool {
        let mut count = self.count.lock().unwrap_or_else(|p| p.into_inner());
        if *count >= MAX_CALLS_IN_FLIGHT {
            return false;
        }
        *count += 1;
        true
    }

    /// One call answered.
    fn end(&self) {
        let mut count = self.count.lock().unwrap_or_else(|p| p.into_inner());
        *count = count.saturating_sub(1);
        self.ended.notify_all();
    }

    /// Waits until no call runs, or `timeout` passes.
    fn drain(&self, timeout: Duration) {
        let count = self.count.lock().unwrap_or_else(|p| p.into_inner());
        let (count, _) = self
            .ended
            .wait_timeout_while(count, timeout, |n| *n > 0)
            .unwrap_or_else(|p| p.into_inner());
        if *count > 0 {
            tracing::info!(
                calls = *count,
                "stdin ended; abandoning the calls still running"
            );
        }
    }
}

/// Writes one message as one line. A client that closed its end ends us quietly.
fn send<W: Write>(output: &Mutex<W>, message: &Value) {
    let mut line = message.to_string();
    line.push('\n');
    let mut out = output
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Err(e) = out.write_all(line.as_bytes()).and_then(|()| out.flush()) {
        crate::output::exit_if_broken_pipe(&e);
        tracing::warn!(error = %e, "writing to stdout");
    }
}

#[cfg(test)]
mod tests;
