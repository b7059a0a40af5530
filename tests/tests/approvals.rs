//! Approval tests: a real kernel, a real daemon, a real `countersign-server` over mutual TLS,
//! and the `countersign` CLI as approvers, auditors and AI agents use it.
//!
//! Needs root; `cargo xtask test` runs them on the host (fallback mode, SQLite and PostgreSQL
//! stores) and in a VM (LSM mode). Every test has its own server, daemon, cgroup and policy.

#[path = "approvals/ahead.rs"]
mod ahead;
#[path = "approvals/audit.rs"]
mod audit;
#[path = "approvals/copies.rs"]
mod copies;
#[path = "approvals/decisions.rs"]
mod decisions;
#[path = "approvals/delegated.rs"]
mod delegated;
#[path = "approvals/evidence.rs"]
mod evidence;
#[path = "approvals/isolation.rs"]
mod isolation;
#[path = "approvals/mcp.rs"]
mod mcp;
#[path = "approvals/outage.rs"]
mod outage;
#[path = "approvals/scenario.rs"]
mod scenario;
#[path = "approvals/slack.rs"]
mod slack;
/// The local Slack of the control plane's chat tests (one peer for both suites).
#[path = "../../control-plane/tests/chat_support/slack.rs"]
#[allow(dead_code, reason = "the approvals suite uses a part")]
mod slack_peer;
/// The local Teams (Bot Framework) of the control plane's chat tests.
#[path = "../../control-plane/tests/chat_support/botframework.rs"]
#[allow(dead_code, reason = "the approvals suite uses a part")]
mod teams_peer;
#[path = "approvals/views.rs"]
mod views;
use slack_peer::until;

use std::{
    process::Command,
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;
use tests::{
    cgroup::Cgroup,
    control_plane::{ControlPlane, Database, SERVER_TIMEOUT},
    process::Spawned,
    GroupSettings, Outcome, TestBed, Verdict,
};

/// The rule of most tests: `bin/guarded delete …` needs an approval.
pub const RULE: &str = "guarded-deletes";
/// The session every test's agent runs in (a child cgroup of the agent group).
pub const SESSION: &str = "s1";
/// Who launched [`SESSION`] (a person without any role).
pub const LAUNCHED_BY: &str = "erin";

/// A test's whole world: the control plane, the daemon connected to it, and a session.
pub struct World {
    // Field order is drop order: the server goes after the daemon is stopped by the bed.
    pub t: TestBed,
    pub cp: ControlPlane,
    pub session: Cgroup,
    pub guarded: String,
}

/// `approvers` is the YAML flow mapping of the rule's `approvers:` (empty: none given).
pub fn approve_rule(guarded: &str, approvers: &str) -> String {
    let mut rule = format!(
        "  - id: {RULE}\n    description: \"Deleting needs a human\"\n    exec: {{ binary: \"{guarded}\", args: [\"delete\"] }}\n    action: approve\n"
    );
    if !approvers.is_empty() {
        rule.push_str(&format!("    approvers: {approvers}\n"));
    }
    rule
}

impl World {
    /// Starts a server on SQLite, pushes the policy (`approvers` for [`RULE`] plus
    /// `extra_rules`) as the security admin, and starts the daemon connected to the server.
    pub fn start(name: &str, approvers: &str, extra_rules: &str) -> Self {
        Self::start_with(name, |_| Database::Sqlite, approvers, extra_rules)
    }

    /// Like [`Self::start`] on the store `database` picks.
    pub fn start_with(
        name: &str,
        database: impl FnOnce(&TestBed) -> Database,
        approvers: &str,
        extra_rules: &str,
    ) -> Self {
        Self::start_full(
            name,
            database,
            approvers,
            extra_rules,
            None,
            GroupSettings::default(),
        )
    }

    /// Like [`Self::start`] with `chat` as the server's chat file (`DATA_DIR/chat.yaml`).
    pub fn start_with_chat(name: &str, chat: &str) -> Self {
        Self::start_full(
            name,
            |_| Database::Sqlite,
            "",
            "",
            Some(chat),
            GroupSettings::default(),
        )
    }

    /// A world whose group names `accounts` (their processes are judged wherever they run),
    /// with `approvers` for [`RULE`] (as in [`Self::start`]).
    pub fn start_with_accounts(name: &str, accounts: &[u32], approvers: &str) -> Self {
        Self::start_full(
            name,
            |_| Database::Sqlite,
            approvers,
            "",
            None,
            GroupSettings {
                accounts,
                ..GroupSettings::default()
            },
        )
    }

    /// A world whose agent group has `settings`.
    pub fn start_with_settings(name: &str, settings: GroupSettings) -> Self {
        Self::start_full(name, |_| Database::Sqlite, "", "", None, settings)
    }

    fn start_full(
        name: &str,
        database: impl FnOnce(&TestBed) -> Database,
        approvers: &str,
        extra_rules: &str,
        chat: Option<&str>,
        settings: GroupSettings,
    ) -> Self {
        let mut t = TestBed::new(name, option_env!("CARGO_BIN_EXE_cs-probe"));
        let db = database(&t);
        let mut cp = ControlPlane::new(t.env(), t.dir(), db);
        if let Some(text) = chat {
            let path = cp.data_dir().join("chat.yaml");
            std::fs::create_dir_all(cp.data_dir()).unwrap_or_else(|e| panic!("data dir: {e}"));
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        cp.start();
        let guarded = t.bin("guarded");
        let policy = t.policy_with(
            settings,
            &format!("{}{extra_rules}", approve_rule(&guarded, approvers)),
        );
        let file = t.path("pushed.yaml");
        std::fs::write(&file, &policy).unwrap_or_else(|e| panic!("writing {file}: {e}"));
        cp.cli(
            "carol",
            &["policy", "push", &file, "--comment", "test policy"],
        )
        .assert_success();
        t.agent_mut().set_run_options(cp.agent_args());
        let session = t.sub_cgroup(SESSION);
        t.start_agent(&policy);
        let w = Self {
            t,
            cp,
            session,
            guarded,
        };
        w.launch_session(SESSION, LAUNCHED_BY, &[]).assert_success();
        w
    }

    /// `countersign-agent launch --agent GROUP --session SESSION -- cs-probe ARGS…` as `user`
    /// (through sudo, as the daemon sees it); registers who launched the session.
    pub fn launch_session(&self, session: &str, user: &str, probe_args: &[&str]) -> Outcome {
        let mut launch = self.t.agent().command();
        launch
            .args(["launch", "--agent", self.t.name(), "--session", session])
            .args(["--run-dir", &self.t.agent().run_dir(), "--"])
            .arg(&self.t.env().probe_bin)
            .args(probe_args)
            .env("SUDO_USER", user);
        self.t
            .spawn_command(launch, &format!("launch-{session}-as-{user}"))
            .wait()
    }

    /// `guarded ARGS…` run by cs-probe inside the session.
    pub fn exec(&self, args: &[&str]) -> Outcome {
        let call: Vec<&str> = [&[self.guarded.as_str()], args].concat();
        self.t
            .probe(&[&["exec"], call.as_slice()].concat())
            .in_cgroup(&self.session)
            .run()
    }

    /// `countersign ARGS…` started as an AI agent inside `session`.
    pub fn spawn_agent_cli(&self, session: &Cgroup, args: &[&str]) -> Spawned {
        self.t.spawn_command(
            self.agent_cli(session, args),
            &format!("agent-{}", args.join("-")),
        )
    }

    /// The command line of `countersign ARGS…` run by an AI agent inside `session`, not
    /// started.
    pub fn agent_cli(&self, session: &Cgroup, args: &[&str]) -> Command {
        let mut cmd = session.command(
            self.t
                .env()
                .cli_bin
                .as_ref()
                .unwrap_or_else(|| panic!("no countersign binary")),
        );
        cmd.env("COUNTERSIGN_AGENT_SOCKET", self.t.agent().agent_socket())
            .args(args);
        cmd
    }

    /// `countersign exec -- guarded ARGS…` started inside the session.
    pub fn spawn_exec(&self, args: &[&str]) -> Spawned {
        let call: Vec<&str> = [&["exec", "--", self.guarded.as_str()], args].concat();
        self.spawn_agent_cli(&self.session, &call)
    }

    /// Waits for the pending request of `guarded ARGS…` in the session, as `person` sees it.
    pub fn pending_for(&self, person: &str, args: &[&str]) -> Value {
        let argv: Vec<String> = std::iter::once(self.guarded.clone())
            .chain(args.iter().map(|a| a.to_string()))
            .collect();
        let what = format!("for {argv:?}");
        self.cp.wait_pending(person, &what, |r| {
            request_argv(r) == argv && r["operation"]["session"] == SESSION
        })
    }

    /// Runs `run` until the approved operation runs (its grant is installed asynchronously),
    /// each refused try refused as a refusal should be; fails after 30 s.
    pub fn until_it_runs(&self, run: impl Fn() -> Outcome) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = run();
            if out.verdict() == (Verdict::Ran { code: 0 }) {
                return;
            }
            self.t.assert_exec_refused(&out);
            assert!(
                Instant::now() < deadline,
                "the approved operation was still refused 30 s after the approval: {out}"
            );
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until the refusal of the daemon reached the server: a request with at least
    /// `attempts` attempts.
    pub fn wait_attempts(&self, request: &str, attempts: u64) -> Value {
        let started = Instant::now();
        loop {
            let r = self.cp.show("alice", request);
            if r["attempts"].as_u64().unwrap_or(0) >= attempts {
                return r;
            }
            assert!(
                started.elapsed() < SERVER_TIMEOUT,
                "request {request} never reached {attempts} attempts: {r}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `request_id` of a request as the CLI prints it in JSON.
pub fn request_id(r: &Value) -> String {
    r["request_id"]
        .as_str()
        .unwrap_or_else(|| panic!("request without request_id: {r}"))
        .to_owned()
}

/// argv of a request's operation.
pub fn request_argv(r: &Value) -> Vec<String> {
    r["operation"]["argv"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits for `spawned` to end, returning how long that took after `since`.
pub fn finish(spawned: Spawned, since: Instant) -> (Outcome, Duration) {
    let mut spawned = spawned;
    while !spawned.has_exited() {
        assert!(
            since.elapsed() < Duration::from_secs(60),
            "the agent's command did not end within 60 s"
        );
        thread::sleep(Duration::from_millis(2));
    }
    let took = since.elapsed();
    (spawned.wait(), took)
}

/// A command run to its end, for plain CLI calls the tests make outside any cgroup.
pub fn run(t: &TestBed, cmd: Command, tag: &str) -> Outcome {
    t.spawn_command(cmd, tag).wait()
}

/// The PostgreSQL server of this run, or None after printing why there is none.
pub fn postgres_url() -> Option<String> {
    let url = std::env::var(tests::env::POSTGRES_URL)
        .ok()
        .filter(|u| !u.is_empty());
    if url.is_none() {
        assert!(
            std::env::var("COUNTERSIGN_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "COUNTERSIGN_REQUIRE_POSTGRES=1 but {} is not set",
            tests::env::POSTGRES_URL
        );
        eprintln!(
            "SKIP: no PostgreSQL server in this run ({} is not set; `cargo xtask test` sets \
             it on the host, the VMs test the kernel side on SQLite)",
            tests::env::POSTGRES_URL
        );
    }
    url
}

/// A fresh database named after the test on the PostgreSQL server `url`.
pub fn postgres_database(url: &str, name: &str) -> Database {
    let db = format!("cs_{}_{}", name.replace('-', "_"), std::process::id());
    for sql in [
        format!("DROP DATABASE IF EXISTS {db}"),
        format!("CREATE DATABASE {db}"),
    ] {
        let out = Command::new("psql")
            .arg(url)
            .args(["-v", "ON_ERROR_STOP=1", "-c", &sql])
            .output()
            .unwrap_or_else(|e| panic!("cannot run psql: {e}"));
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let base = url.rsplit_once('/').map_or(url, |(b, _)| b);
    Database::Postgres(format!("{base}/{db}"))
}
