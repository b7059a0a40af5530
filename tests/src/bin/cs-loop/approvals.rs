//! `cs-loop approvals`: how long the human approval loop takes around the human — a refusal
//! until the approver can see it, an approval until the agent's retry passes — over a real
//! kernel, a real daemon and a real server on this machine; the approver on the CLI's gRPC
//! API, in Slack, or both in turn (`--via`), compared in the same run.

mod checks;
mod options;
mod report;
mod session;
mod slack;
mod world;

use std::{
    thread,
    time::{Duration, Instant, SystemTime},
};

use countersign_api::pb::{
    decide_request::Verdict, ApprovalRequest, ApproveOnce, DecideRequest, ListPendingRequest,
};
use tests::control_plane::HOST;
use tokio::runtime::Runtime;
use tonic::transport::Channel;

use tests::bench::{cli, interrupt, Failure};

use crate::{grpc, progress};
pub use options::Options;
use session::{Agent, Exec};
use slack::Slack;
use world::{World, APPROVER, GROUP};

/// Longest wait for any one step (a request to show up, a grant to arrive).
const STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause between two ListPending polls: short enough not to blur the figure, long enough
/// not to turn the poller into the server's main load.
const POLL_PAUSE: Duration = Duration::from_millis(1);

/// Where the approver sees the request and decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// The CLI's way: ApprovalService.ListPending and Decide over mutual TLS.
    Cli,
    /// Slack: the request's message in the approvers' channel, a click on "Approve once".
    Slack,
}

impl Via {
    /// The channel the decision's audit record names (cs-loop's gRPC client does not label
    /// itself `cli` as the CLI does: `api`).
    pub fn channel(self) -> &'static str {
        match self {
            Via::Cli => "api",
            Via::Slack => "slack",
        }
    }
}

/// The timings of one iteration.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub via: Via,
    /// The refused exec was reaped → the approver's ListPending showed its request (Slack:
    /// the local Slack received its message).
    pub visible: Duration,
    /// Decide sent → the retry exec ended successfully (Slack: the click sent).
    pub retry: Duration,
    /// Decide sent → Decide returned (Slack: the click's POST → its acknowledgement).
    pub decide: Duration,
    /// Decide (the click) returned → the stand-in agent's wait answered `granted`.
    pub delivered: Duration,
    /// `granted` printed → the retry exec ended.
    pub exec: Duration,
    /// The refused exec, from the command to the stand-in agent to its answer.
    pub refused_exec: Duration,
    /// A plain exec of /bin/true in the session, measured the same way: what any exec costs
    /// here, to read `exec` and `refused_exec` against.
    pub plain_exec: Duration,
}

/// What one iteration left behind, for the checks.
#[derive(Clone, Debug)]
pub struct Iteration {
    /// argv[1] of the guarded exec (`req-17`, `warm-2`).
    pub label: String,
    pub via: Via,
    pub request_id: String,
    pub fingerprint: String,
    /// Attempts of the request when the approver first saw it (must be 1).
    pub attempts: u32,
    pub grant_id: String,
    /// Wall-clock time of the refusal (to compare with the server's audit times).
    pub refused_at: SystemTime,
    /// When the server received the refusal: the time of the request's audit record (filled
    /// in by the checks).
    pub received_at: Option<SystemTime>,
}

/// `approvals …`: sets up, runs, checks, prints the report.
pub fn cmd(args: &[String]) -> Result<(), Failure> {
    let opts = Options::parse(args)?;
    cli::require_root("the approvals run")?;
    interrupt::install();
    let load = crate::report::load_average();
    let rt = grpc::runtime(1)?;
    let mut world = World::new(&opts, &rt)?;
    let result = run(&opts, &world, &rt).map_err(|e| format!("{e}\n{}", world.diagnostics()));
    let problems = world.clean_up(result.is_err() || opts.keep);
    let (samples, its) = result?;
    if !problems.is_empty() {
        return Err(Failure::Run(format!("cleanup: {}", problems.join("; "))));
    }
    crate::report::print(&report::markdown(&opts, &load, &samples, &its));
    Ok(())
}

fn run(
    opts: &Options,
    world: &World,
    rt: &Runtime,
) -> Result<(Vec<Sample>, Vec<Iteration>), String> {
    let approver = Approver {
        grpc: rt.block_on(grpc::connect(
            &world.cp.url(),
            &world.pki().person(APPROVER),
        ))?,
        slack: world.slack.as_ref(),
    };
    let mut agent = world.start_stand_in(STEP_TIMEOUT)?;
    let mut samples = Vec::with_capacity(opts.iterations);
    let mut its = Vec::with_capacity(opts.iterations + opts.warmup);
    let labels = (0..opts.warmup)
        .map(|i| (format!("warm-{i}"), false))
        .chain((0..opts.iterations).map(|i| (format!("req-{i}"), true)));
    for (n, (label, measured)) in labels.enumerate() {
        interrupt::check()?;
        let via = opts.vias[n % opts.vias.len()];
        let (sample, it) = iteration(&mut agent, rt, &approver, &label, via)
            .map_err(|e| format!("iteration {label} ({via:?}): {e}"))?;
        // Every 20th iteration of each path.
        if n % 20 < opts.vias.len() || !measured {
            progress(&format!(
                "{label} ({via:?}): visible after {}, retry passed {} after the approval",
                crate::stats::ms(sample.visible),
                crate::stats::ms(sample.retry)
            ));
        }
        if measured {
            samples.push(sample);
        }
        its.push(it);
    }
    checks::run(world, rt, &mut its)?;
    Ok((samples, its))
}

/// The approver's ends: her mTLS channel to the server and, with Slack, the local Slack.
struct Approver<'w> {
    grpc: Channel,
    slack: Option<&'w Slack>,
}

impl Approver<'_> {
    fn slack(&self) -> Result<&Slack, String> {
        self.slack
            .ok_or_else(|| "no local Slack in this run".to_owned())
    }
}

/// Refusal → visible → wait → approval → granted → retry passes, timed.
fn iteration(
    agent: &mut Agent,
    rt: &Runtime,
    approver: &Approver,
    label: &str,
    via: Via,
) -> Result<(Sample, Iteration), String> {
    let spawned = Instant::now();
    match agent.exec(label)? {
        Exec::Refused => {}
        other => return Err(format!("the first exec was not refused: {other:?}")),
    }
    let refused = Instant::now();
    let refused_at = SystemTime::now();
    let (request, visible) = match via {
        Via::Cli => {
            let request = wait_visible(rt, &approver.grpc, label)?;
            (request, Instant::now())
        }
        Via::Slack => {
            let post = approver.slack()?.wait_post(label, STEP_TIMEOUT)?;
            // Untimed: the fingerprint (for the wait) and the attempts (for the checks).
            let request = wait_visible(rt, &approver.grpc, label)?;
            if request.request_id != post.request_id {
                return Err(format!(
                    "Slack shows request {}, ListPending {}",
                    post.request_id, request.request_id
                ));
            }
            (request, post.at)
        }
    };
    let fingerprint = request
        .operation
        .as_ref()
        .map(|o| o.fingerprint.clone())
        .unwrap_or_default();
    agent.start_wait(&fingerprint)?;
    // Decide's answer names the grant it issued; a click's acknowledgement does not.
    let (decide_sent, issued) = match via {
        Via::Cli => {
            let decide_sent = Instant::now();
            let decision = rt
                .block_on(grpc::approval(&approver.grpc).decide(DecideRequest {
                    request_id: request.request_id.clone(),
                    verdict: Some(Verdict::ApproveOnce(ApproveOnce {})),
                }))
                .map_err(|s| grpc::failed("ApprovalService.Decide", &s))?
                .into_inner();
            (decide_sent, Some(decision.grant_id))
        }
        Via::Slack => {
            let slack = approver.slack()?;
            let click = slack.click(&request.request_id)?;
            let decide_sent = Instant::now();
            slack.send(rt, click)?;
            (decide_sent, None)
        }
    };
    let decided = Instant::now();
    let granted = agent.granted()?;
    let told = Instant::now();
    if issued.as_ref().is_some_and(|g| *g != granted) {
        return Err(format!(
            "the wait was told grant {granted}, Decide issued {issued:?}"
        ));
    }
    match agent.exec(label)? {
        Exec::Passed => {}
        other => return Err(format!("the retry after the grant did not pass: {other:?}")),
    }
    let passed = Instant::now();
    let plain = Instant::now();
    match agent.plain()? {
        Exec::Passed => {}
        other => {
            return Err(format!(
                "a plain exec in the session did not pass: {other:?}"
            ))
        }
    }
    let plain_exec = plain.elapsed();
    if via == Via::Slack {
        // Untimed: the message now says who approved, and how. (A CLI iteration's request
        // may be decided before the server posted it, and then it never is.)
        approver
            .slack()?
            .wait_approved(&request.request_id, via.channel(), STEP_TIMEOUT)?;
    }
    let sample = Sample {
        via,
        // The local Slack may note the message's arrival before we read the refusal.
        visible: visible.saturating_duration_since(refused),
        retry: passed - decide_sent,
        decide: decided - decide_sent,
        delivered: told - decided,
        exec: passed - told,
        refused_exec: refused - spawned,
        plain_exec,
    };
    let it = Iteration {
        label: label.to_owned(),
        via,
        request_id: request.request_id,
        fingerprint,
        attempts: request.attempts,
        grant_id: granted,
        refused_at,
        received_at: None,
    };
    Ok((sample, it))
}

/// Polls ListPending (as the approver, over one channel) until the request of `guarded
/// LABEL` shows up.
fn wait_visible(rt: &Runtime, approver: &Channel, label: &str) -> Result<ApprovalRequest, String> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    let mut client = grpc::approval(approver);
    loop {
        let page = rt
            .block_on(client.list_pending(ListPendingRequest {
                host: HOST.to_owned(),
                agent_group: GROUP.to_owned(),
                page_size: 100,
                page_token: String::new(),
            }))
            .map_err(|s| grpc::failed("ApprovalService.ListPending", &s))?
            .into_inner();
        let found = page.requests.into_iter().find(|r| {
            r.operation
                .as_ref()
                .is_some_and(|o| o.argv.get(1).map(String::as_str) == Some(label))
        });
        if let Some(r) = found {
            return Ok(r);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "no pending request for `guarded {label}` within {STEP_TIMEOUT:?}"
            ));
        }
        thread::sleep(POLL_PAUSE);
    }
}
