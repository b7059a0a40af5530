//! `cargo xtask demo`: the README's story played by itself, narrated — an AI agent is refused
//! `kubectl delete deploy web`, an approver sees the request and approves it once, the agent's
//! waiting retry passes, a second try is refused, and an auditor exports and verifies the trail
//! (and watches a tampered copy fail). A private stack: nothing of `cargo xtask up` is touched.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};

use crate::{setup, stack, util};

const GROUP: &str = "demo-agents";
const SESSION: &str = "demo";
const LISTEN: &str = "127.0.0.1:7453";

/// Plays the story; fails when any step does not go as told.
pub fn run() -> Result<()> {
    setup::run()?;
    let bins = stack::build()?;
    let base = PathBuf::from(format!("/tmp/countersign-demo-{}", std::process::id()));
    let dirs = stack::Dirs {
        server: base.join("server"),
        agent_state: Some(base.join("state")),
        agent_run: Some(base.join("run")),
        bpffs: Some(PathBuf::from("/sys/fs/bpf/countersign-demo")),
    };
    let kubectl = stand_in_kubectl(&base)?;
    let policy = base.join("policy.yaml");
    fs::write(&policy, policy_text(&kubectl))?;
    let host = stack::prepare(&bins, &dirs)?;
    let result = {
        let stack = stack::start(&bins, &dirs, &host, &policy, LISTEN, true)?;
        let story = Story {
            bins: &bins,
            dirs: &dirs,
            url: &stack.url,
            kubectl: &kubectl,
            base: &base,
        };
        story.play()
    };
    let _ = Command::new(&bins.agent)
        .arg("unload")
        .arg("--bpffs")
        .args(dirs.bpffs.iter())
        .status();
    match result {
        Ok(()) => {
            let _ = fs::remove_dir_all(&base);
            println!("\nThe end. (Everything the demo made is gone; its cgroup /countersign/{GROUP} stays, empty.)");
            Ok(())
        }
        Err(e) => {
            eprintln!(
                "\nthe demo went off script; its files are in {}",
                base.display()
            );
            Err(e)
        }
    }
}

/// A copy of `echo` named kubectl: a real binary (fallback mode judges the executed image, so
/// a shell script would be judged as its interpreter), harmless, and it shows its arguments.
fn stand_in_kubectl(base: &Path) -> Result<PathBuf> {
    let bin = base.join("bin");
    fs::create_dir_all(&bin)?;
    let kubectl = bin.join("kubectl");
    fs::copy("/bin/echo", &kubectl).context("copying /bin/echo as the stand-in kubectl")?;
    Ok(kubectl)
}

fn policy_text(kubectl: &Path) -> String {
    format!(
        "version: 1\n\
         agents:\n  - name: {GROUP}\n    cgroup: /countersign/{GROUP}\n    default: {{ exec: allow, network: allow }}\n\
         rules:\n  - id: kubectl-mutations\n    description: \"Mutating kubectl calls need a human\"\n    \
         exec: {{ binary: \"{}\", args: [\"delete|apply|scale\", \"*\"] }}\n    action: approve\n    \
         approvers: {{ groups: [sre], min: 1, grant: {{ uses: 1, ttl: 10m }} }}\n",
        kubectl.display()
    )
}

struct Story<'a> {
    bins: &'a stack::Binaries,
    dirs: &'a stack::Dirs,
    url: &'a str,
    kubectl: &'a Path,
    base: &'a Path,
}

impl Story<'_> {
    fn play(&self) -> Result<()> {
        say("An AI agent, in session `demo` of the agent group `demo-agents`, runs `kubectl delete deploy web`.");
        let first = self.in_session(&[]).output()?;
        show(&first);
        if first.status.success() {
            bail!("the guarded command ran: it should have been refused");
        }
        say("The kernel refused it before kubectl ran; the daemon raised an approval request. The approver (alice) lists what is pending:");
        let id = self.wait_for_request()?;
        show(&self.person("alice", &["pending"])?);

        say("The agent retries through `countersign exec`, which waits for the decision:");
        let mut waiting = self
            .in_session(&["exec"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        thread::sleep(Duration::from_millis(500));
        say(&format!(
            "alice approves it, once: countersign approve {id} --once"
        ));
        show(&self.person("alice", &["approve", &id, "--once"])?);
        let approved = Instant::now();
        let deadline = approved + Duration::from_secs(30);
        while waiting.try_wait()?.is_none() {
            if Instant::now() > deadline {
                let _ = waiting.kill();
                bail!("the waiting retry did not finish within 30 s of the approval");
            }
            thread::sleep(Duration::from_millis(1));
        }
        let took = approved.elapsed();
        let retried = waiting.wait_with_output()?;
        show(&retried);
        if !retried.status.success() {
            bail!("the approved retry failed");
        }
        say(&format!(
            "The retry passed {} ms after the approval returned.",
            took.as_millis()
        ));

        say("The grant was for one use: the same command again is refused, and asks anew.");
        let again = self.in_session(&[]).output()?;
        show(&again);
        if again.status.success() {
            bail!("the one-shot grant let a second run through");
        }

        self.audit()
    }

    fn audit(&self) -> Result<()> {
        let trail = self.base.join("trail.jsonl");
        let trail_s = trail.to_string_lossy().into_owned();
        let key = self.dirs.server.join("audit-key.pub");
        let key_s = key.to_string_lossy().into_owned();
        say("The auditor (sam) exports the trail and verifies it:");
        let export = self.person(
            "sam",
            &["audit", "export", "--format", "jsonl", "-o", &trail_s],
        )?;
        show(&export);
        let text = fs::read_to_string(&trail)?;
        println!(
            "    ({} records; kinds: {})",
            text.lines().count(),
            kinds(&text)
        );
        let ok = self.person("sam", &["audit", "verify", &trail_s, "--key", &key_s])?;
        show(&ok);
        if !ok.status.success() {
            bail!("the untouched export did not verify");
        }
        say("Someone edits the decision record to blame mallory; verify names the record:");
        let forged = self.base.join("forged.jsonl");
        let forged_text: Vec<String> = text
            .lines()
            .map(|l| {
                if l.contains("\"kind\":\"decision\"") {
                    l.replace("alice", "mallory")
                } else {
                    l.to_owned()
                }
            })
            .collect();
        fs::write(&forged, forged_text.join("\n") + "\n")?;
        let bad = self.person(
            "sam",
            &[
                "audit",
                "verify",
                &forged.to_string_lossy(),
                "--key",
                &key_s,
            ],
        )?;
        show(&bad);
        if bad.status.success() {
            bail!("a tampered export verified");
        }
        Ok(())
    }

    /// `countersign-agent launch … -- [countersign EXTRA --] kubectl delete deploy web`.
    fn in_session(&self, through_cli: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bins.agent);
        cmd.args(["launch", "--agent", GROUP, "--session", SESSION])
            .arg("--run-dir")
            .args(self.dirs.agent_run.iter())
            .arg("--");
        if !through_cli.is_empty() {
            cmd.arg(&self.bins.cli).args(through_cli).arg("--");
        }
        cmd.arg(self.kubectl)
            .args(["delete", "deploy", "web"])
            .env("COUNTERSIGN_AGENT_SOCKET", self.dirs.agent_socket());
        println!("    $ {}", util::describe(&cmd));
        cmd
    }

    /// `countersign --as NAME ARGS…` against the demo's server.
    fn person(&self, name: &str, args: &[&str]) -> Result<Output> {
        let mut cmd = Command::new(&self.bins.cli);
        cmd.args(["--server", self.url, "--as", name])
            .env("COUNTERSIGN_CERTS_DIR", self.dirs.certs())
            .args(args);
        println!("    $ countersign --as {name} {}", args.join(" "));
        cmd.output().context("running countersign")
    }

    /// The id of the pending request of the demo session, once the server has it.
    fn wait_for_request(&self) -> Result<String> {
        let started = Instant::now();
        loop {
            let out = Command::new(&self.bins.cli)
                .args(["--server", self.url, "--as", "alice", "pending", "--json"])
                .env("COUNTERSIGN_CERTS_DIR", self.dirs.certs())
                .output()?;
            let text = String::from_utf8_lossy(&out.stdout);
            if let Some(id) = first_request_id(&text) {
                return Ok(id);
            }
            if started.elapsed() > Duration::from_secs(30) {
                bail!(
                    "no pending request within 30 s: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The first `"request_id": "r-…"` in JSON text.
fn first_request_id(json: &str) -> Option<String> {
    let at = json.find("\"request_id\"")?;
    let rest = &json[at + "\"request_id\"".len()..];
    let start = rest.find('"')? + 1;
    let len = rest[start..].find('"')?;
    Some(rest[start..start + len].to_owned())
}

/// The record kinds of a JSON Lines trail, in order of first appearance.
fn kinds(text: &str) -> String {
    let mut seen: Vec<String> = Vec::new();
    for line in text.lines() {
        if let Some(kind) = serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| v["kind"].as_str().map(str::to_owned))
        {
            if !seen.contains(&kind) {
                seen.push(kind);
            }
        }
    }
    seen.join(", ")
}

fn say(text: &str) {
    println!("\n--- {text}");
}

fn show(out: &Output) {
    use std::os::unix::process::ExitStatusExt as _;
    for stream in [&out.stdout, &out.stderr] {
        for line in String::from_utf8_lossy(stream).lines() {
            println!("    | {line}");
        }
    }
    match (out.status.code(), out.status.signal()) {
        (_, Some(9)) => println!("    (killed: fallback mode stops a refused exec with SIGKILL)"),
        (Some(0), _) => {}
        (Some(code), _) => println!("    (exit status {code})"),
        (None, Some(sig)) => println!("    (killed by signal {sig})"),
        (None, None) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_request_id() {
        let json = r#"[{"request_id": "r-3f9a1c02de", "host": "h"}]"#;
        assert_eq!(first_request_id(json).as_deref(), Some("r-3f9a1c02de"));
        assert_eq!(first_request_id("[]"), None);
    }
}
