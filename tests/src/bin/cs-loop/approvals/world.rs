//! Everything the approvals run creates — a temp directory `/tmp/cs-loop-<pid>` (server data,
//! certificates, daemon state, the guarded binary), the agent group's cgroup
//! `/cs-loop/run-<pid>` with the session `s1` inside, a daemon pinned under
//! `<bpffs>/cs-loop-<pid>`, a server on a loopback port (with `--via slack|both`, its chat
//! endpoints on another and a local Slack on a third) — and its removal, also when the run
//! fails or is interrupted. Names carry the pid: the leftovers of a killed run are swept by
//! the next one.

use std::{fs, path::PathBuf};

use countersign_api::pb::PutPolicyRequest;
use tests::{
    bench::{guarded, Rig},
    cgroup::Cgroup,
    control_plane::{ControlPlane, Database},
};
use tokio::runtime::Runtime;

use super::{slack::Slack, Options};
use crate::{
    grpc::{self, Pki},
    harness,
};

/// Agent group of the policy.
pub const GROUP: &str = "loop";
/// The session the agent's processes run in (a child cgroup of the group).
pub const SESSION: &str = "s1";
/// The rule that guards the binary.
pub const RULE: &str = "loop-guarded";
/// The person who approves (approver in group `sre`, see `tests::control_plane::PEOPLE`).
pub const APPROVER: &str = "alice";
/// The person who pushes the policy, links alice's Slack account and reads the audit trail
/// (admin and auditor).
pub const AUDITOR: &str = "carol";

/// The run's resources; see the module documentation.
pub struct World {
    /// The daemon, the temp directory and the agent group's cgroup `/cs-loop/run-<pid>`.
    /// Declared before `cp`: fields drop in order, so on a panic (no `clean_up`) the daemon
    /// is stopped before the server too.
    pub rig: Rig,
    pub session: Cgroup,
    pub cp: ControlPlane,
    /// A copy of /bin/true (a real ELF image: fallback mode judges the executed image, so a
    /// script would be judged as its interpreter).
    pub guarded: PathBuf,
    /// This program, started in the session as the stand-in agent.
    pub exe: PathBuf,
    /// The local Slack the server posts to (`--via slack|both`).
    pub slack: Option<Slack>,
}

impl World {
    /// Sweeps leftovers, creates the directory, the cgroups and the guarded binary, starts the
    /// server on SQLite, pushes the policy as the security admin and starts the daemon
    /// connected to the server.
    pub fn new(opts: &Options, rt: &Runtime) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;
        let env = harness::test_env(&opts.bins, opts.mode, &opts.env);
        let rig = Rig::new("cs-loop", &env)?;
        let dir = rig.dir();
        fs::create_dir_all(dir.join("bin"))
            .map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let guarded_bin = dir.join("bin").join("guarded");
        fs::copy("/bin/true", &guarded_bin)
            .map_err(|e| format!("copying /bin/true to {}: {e}", guarded_bin.display()))?;
        let cp = guarded("preparing the server", || {
            ControlPlane::new(&env, dir, Database::Sqlite)
        })?;
        let slack = if opts.slack() {
            Some(Slack::start(rt, cp.data_dir(), &dir.join("secrets"))?)
        } else {
            None
        };
        let mut world = Self {
            session: rig.cgroup().child(SESSION),
            rig,
            cp,
            guarded: guarded_bin,
            exe,
            slack,
        };
        if let Err(e) = world.start(rt) {
            // Keep the directory: the server's and the daemon's logs say why.
            let problems = world.clean_up(true);
            return Err([e]
                .into_iter()
                .chain(problems)
                .collect::<Vec<_>>()
                .join("\n"));
        }
        Ok(world)
    }

    fn start(&mut self, rt: &Runtime) -> Result<(), String> {
        fs::create_dir_all(self.session.dir())
            .map_err(|e| format!("creating cgroup {}: {e}", self.session.dir().display()))?;
        let cp = &mut self.cp;
        guarded("starting the server", || cp.start())?;
        let yaml = self.policy();
        // The server's copy decides who approves (and the daemon fetches it: the same text).
        rt.block_on(async {
            let carol = grpc::connect(&self.cp.url(), &self.pki().person(AUDITOR)).await?;
            grpc::policy(&carol)
                .put(PutPolicyRequest {
                    yaml: yaml.clone(),
                    comment: "cs-loop approvals benchmark".into(),
                    base_revision: String::new(),
                })
                .await
                .map_err(|s| grpc::failed("PolicyService.Put", &s))?;
            if self.slack.is_some() {
                let alice = grpc::connect(&self.cp.url(), &self.pki().person(APPROVER)).await?;
                Slack::link(&carol, &alice).await?;
            }
            Ok::<_, String>(())
        })?;
        let path = &self.rig.agent.dirs().policy;
        fs::write(path, &yaml).map_err(|e| format!("writing {}: {e}", path.display()))?;
        self.rig.agent.set_run_options(self.cp.agent_args());
        self.rig.start_agent()
    }

    /// One agent group, everything allowed but the guarded binary with any first argument.
    fn policy(&self) -> String {
        format!(
            "version: 1\nagents:\n  - name: {GROUP}\n    cgroup: {}\n    default: {{ exec: allow, network: allow }}\nrules:\n  - id: {RULE}\n    description: \"cs-loop: each run of the guarded copy of true needs a human\"\n    exec: {{ binary: \"{}\", args: [\"*\"] }}\n    action: approve\n    approvers: {{ groups: [sre], min: 1, grant: {{ uses: 1, ttl: 10m }} }}\n",
            self.rig.cgroup().path(),
            self.guarded.display()
        )
    }

    /// The certificates of the run's CA.
    pub fn pki(&self) -> Pki {
        Pki::new(&self.cp.certs_dir())
    }

    /// The daemon's and the server's logs, for failure messages.
    pub fn diagnostics(&self) -> String {
        format!(
            "{}\n{}",
            self.rig.agent.diagnostics(),
            self.cp.diagnostics()
        )
    }

    /// Stops the daemon (and unloads it) and the server, removes the cgroups and, unless
    /// `failed`, the temp directory. Returns the problems.
    pub fn clean_up(&mut self, failed: bool) -> Vec<String> {
        // The daemon first, while the server it is connected to still answers.
        let problems = self.rig.agent.shut_down();
        self.cp.stop();
        self.rig.remove(failed, problems)
    }
}
