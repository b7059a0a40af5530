//! No way out (issue 11): an agent running as root inside its session tries to leave it, to
//! blind or unload the enforcer, to reach around the socket hooks and to load kernel code.
//! LSM mode refuses each with EPERM and reports a `tamper` event naming the attempt and its
//! target; fallback mode refuses raw and ICMP inet sockets the same way, kills the caller on
//! entry to the system calls it can see (bpf, signals and traces of the daemon, guarded
//! mounts, packet sockets, reboot, module loads, clone3 into a cgroup), reports the same
//! event with the outcome `killed`, and says in `status` what it does not see (asserted here
//! exactly as docs/operations.md documents it). The agent's ordinary work keeps working.

use std::{fs, os::unix::fs::MetadataExt as _};

use tests::{
    cgroup,
    env::Mode,
    outcome::{Outcome, Verdict},
    GroupSettings, TestBed,
};

use super::{exec_rule, testbed};

const AF_INET: &str = "2";
const AF_INET6: &str = "10";
const AF_PACKET: &str = "17";
const SOCK_DGRAM: &str = "2";
const SOCK_RAW: &str = "3";
const IPPROTO_ICMP: &str = "1";
/// `htons(ETH_P_ALL)`.
const ETH_P_ALL_BE: &str = "768";

/// `cs-probe tamper ARGS…` as root inside the agent cgroup.
fn attempt(t: &TestBed, args: &[&str]) -> Outcome {
    t.probe(&[&["tamper"], args].concat()).run()
}

/// The attempt failed with EPERM and its tamper event names `what` and a target containing
/// `target`.
fn assert_refused(t: &TestBed, out: &Outcome, what: &str, target: &str) {
    out.assert_errno(libc::EPERM);
    assert_reported(t, out, what, target, "refused");
}

/// Fallback mode: the process was killed on entry to the call, and its tamper event names
/// `what` and a target containing `target`.
fn assert_killed(t: &TestBed, out: &Outcome, what: &str, target: &str) {
    assert_eq!(
        out.verdict(),
        Verdict::Killed {
            signal: libc::SIGKILL
        },
        "{what} on {target}: {out}"
    );
    assert_reported(t, out, what, target, "killed");
}

fn assert_reported(t: &TestBed, out: &Outcome, what: &str, target: &str, outcome: &str) {
    let e = t
        .events()
        .wait_for(&format!("tamper {what} by {}", out.pid), |e| {
            e.kind == "tamper" && e.tgid == out.pid
        });
    let tamper = e
        .tamper
        .clone()
        .unwrap_or_else(|| panic!("no tamper field: {}", e.line));
    assert_eq!(
        (tamper.what.as_str(), e.action.as_str(), e.outcome.as_str()),
        (what, "deny", outcome),
        "{}",
        e.line
    );
    assert!(
        tamper.target.contains(target),
        "target {target:?}: {}",
        e.line
    );
    assert_eq!(e.agent.as_deref(), Some(t.name()), "{}", e.line);
}

/// Whether this kernel has the syscall tracepoint `name` (no module support: no
/// `sys_enter_init_module`).
fn has_tracepoint(name: &str) -> bool {
    ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .iter()
        .any(|t| {
            std::path::Path::new(t)
                .join("events/syscalls")
                .join(name)
                .exists()
        })
}

/// The protection's state in `status --json`.
fn protection(t: &TestBed, name: &str) -> String {
    t.agent().protection(name)
}

#[test]
fn a_root_agent_cannot_leave_its_session_nor_reach_around_the_hooks() {
    let mut t = testbed("no-way-out");
    let guarded = t.bin("guarded");
    t.start_agent(&t.policy(&exec_rule("no-guarded", &guarded, "deny")));
    leaving_the_session(&t, &guarded);
    raw_network_and_kernel_loading(&t);
    handing_work_to_delegators(&t);
}

#[test]
fn a_root_agent_cannot_blind_unload_or_rewrite_the_enforcer() {
    let mut t = testbed("no-tamper");
    let guarded = t.bin("guarded");
    t.start_agent(&t.policy(&exec_rule("no-guarded", &guarded, "deny")));
    // The files first: the attempts on the daemon's process come last.
    touching_the_daemons_files(&t, &guarded);
    blinding_the_enforcer(&t, &guarded);
}

fn leaving_the_session(t: &TestBed, guarded: &str) {
    let root = cgroup::root();
    let root_dir = root.to_string_lossy().into_owned();
    // Ordinary work: a cgroup of its own below the session.
    let own = t.group().dir().join("own");
    let own_dir = own.to_string_lossy().into_owned();
    attempt(t, &["mkdir", &own_dir]).assert_ok();

    let to_root = attempt(t, &["cgroup-move", &root_dir]);
    let into_own = attempt(t, &["cgroup-move", &own_dir]);
    let clone_out = attempt(t, &["clone-into", &root_dir]);
    // Another cgroup's controls: `cgroup.kill` or `cgroup.freeze` of the daemon's cgroup
    // would kill or freeze it without a signal the `signal` guard sees.
    let controls = root.join("cgroup.subtree_control");
    let configure = attempt(t, &["write", &controls.to_string_lossy()]);
    let freeze_own = attempt(t, &["write", &own.join("cgroup.freeze").to_string_lossy()]);
    // Cgroups outside its own subtree: none created, none removed (an idle agent group's
    // cgroup removed and made again would have an id nobody watches). Its own: both work.
    let pid = std::process::id();
    let outside = root.join(format!("cs-outside-{pid}"));
    let make_outside = attempt(t, &["mkdir", &outside.to_string_lossy()]);
    let groups = t
        .group()
        .dir()
        .parent()
        .expect("the test groups' cgroup")
        .to_path_buf();
    let victim = groups.join(format!("cs-victim-{pid}"));
    fs::create_dir(&victim).expect("an idle cgroup outside the session");
    let remove_victim = attempt(t, &["rmdir", &victim.to_string_lossy()]);
    let sub = own.join("sub").to_string_lossy().into_owned();
    attempt(t, &["mkdir", &sub]).assert_ok();
    attempt(t, &["rmdir", &sub]).assert_ok();
    let victim_kept = victim.exists();
    for dir in [&outside, &victim] {
        let _ = fs::remove_dir(dir);
    }
    if t.mode() == Mode::Fallback {
        // Documented: fallback mode sees none of these but clone3(CLONE_INTO_CGROUP), whose
        // caller is killed before the child exists; status says so.
        to_root.assert_ok();
        assert_killed(
            t,
            &clone_out,
            "clone_into_cgroup",
            "clone flags 0x200000000",
        );
        make_outside.assert_ok();
        remove_victim.assert_ok();
        assert_eq!(protection(t, "cgroup_escape_by_root"), "absent");
        return;
    }
    let id = |dir: &std::path::Path| fs::metadata(dir).expect("cgroup dir").ino();
    let created = format!("create cs-outside-{pid} in cgroup {}", id(&root));
    assert_refused(t, &make_outside, "cgroup_dir", &created);
    let removed = format!("remove cs-victim-{pid} from cgroup {}", id(&groups));
    assert_refused(t, &remove_victim, "cgroup_dir", &removed);
    assert!(
        victim_kept,
        "the idle cgroup outside the session was removed"
    );
    assert_eq!(protection(t, "cgroup_escape_by_root"), "enforced");
    let root_target = format!("cgroup.procs of cgroup {}", id(&root));
    assert_refused(t, &to_root, "cgroup_move", &root_target);
    let own_target = format!("cgroup.procs of cgroup {}", id(&own));
    assert_refused(t, &into_own, "cgroup_move", &own_target);
    assert_refused(
        t,
        &clone_out,
        "clone_into_cgroup",
        "clone flags 0x200000000",
    );
    let root_controls = format!("cgroup.subtree_control of cgroup {}", id(&root));
    assert_refused(t, &configure, "cgroup_write", &root_controls);
    let own_freeze = format!("cgroup.freeze of cgroup {}", id(&own));
    assert_refused(t, &freeze_own, "cgroup_write", &own_freeze);
    // Still in the session: the guarded binary is still refused.
    let out = t.exec(&[guarded]);
    t.assert_exec_refused(&out);
}

fn blinding_the_enforcer(t: &TestBed, guarded: &str) {
    if t.mode() == Mode::Fallback {
        blinding_the_enforcer_in_fallback_mode(t, guarded);
        return;
    }
    assert_eq!(protection(t, "enforcer_tamper_by_root"), "enforced");
    assert_eq!(protection(t, "guarded_mounts"), "enforced");
    let daemon = t.agent().pid().expect("daemon pid").to_string();
    let bpffs = t.agent().dirs().bpffs.clone();
    let pin = bpffs.join("links").join("bprm_check_security");
    let pin_s = pin.to_string_lossy().into_owned();
    let map = bpffs.join("maps").join("GRANTS");

    let kill = attempt(t, &["kill", &daemon, "9"]);
    assert_refused(
        t,
        &kill,
        "signal",
        &format!("pid {daemon} (the daemon), signal 9"),
    );
    let term = attempt(t, &["kill", &daemon, "15"]);
    assert_refused(t, &term, "signal", "signal 15");
    let trace = attempt(t, &["ptrace", &daemon]);
    assert_refused(t, &trace, "ptrace", &format!("pid {daemon}"));
    let unlink = attempt(t, &["unlink", &pin_s]);
    assert_refused(t, &unlink, "pin_removal", "bprm_check_security");
    // Renaming a pin or the directory holding them fails with EPERM in the kernel itself
    // (5.10, 6.12) before the inode_rename guard is reached: still refused, not ours to report.
    let links = bpffs.join("links").to_string_lossy().into_owned();
    attempt(t, &["rename", &links, &format!("{links}.moved")]).assert_errno(libc::EPERM);
    assert!(
        bpffs.join("links").exists(),
        "the links directory was renamed"
    );
    let create = attempt(t, &["bpf-map-create"]);
    assert_refused(t, &create, "bpf", "BPF_MAP_CREATE");
    let get = attempt(t, &["bpf-obj-get", &map.to_string_lossy()]);
    assert_refused(t, &get, "bpf", "BPF_OBJ_GET");

    // A bpf file system of its own, mounted by the test (not the agent): the agent may not
    // unmount it, nor mount another.
    let spare = t.dir().join("spare-bpffs");
    let spare_s = spare.to_string_lossy().into_owned();
    fs::create_dir_all(&spare).expect("mkdir");
    let mounted = std::process::Command::new("mount")
        .args(["-t", "bpf", "bpf", &spare_s])
        .status()
        .expect("mount");
    assert!(
        mounted.success(),
        "the test could not mount bpffs at {spare_s}"
    );
    let umount = attempt(t, &["umount", &spare_s]);
    let again = attempt(t, &["mount", "bpf", &spare_s]);
    let cg = attempt(t, &["mount", "cgroup2", &spare_s]);
    let _ = std::process::Command::new("umount").arg(&spare_s).status();
    assert_refused(t, &umount, "unmount", "bpf file system");
    assert_refused(t, &again, "mount", "bpf file system");
    assert_refused(t, &cg, "mount", "cgroup2 file system");

    // Nothing of it landed: the daemon runs, the pin is there, the rule holds.
    assert!(pin.exists(), "{} was removed", pin.display());
    let status = t.agent().status_json();
    assert_eq!(status["mode"], "lsm", "{status}");
    let out = t.exec(&[guarded]);
    t.assert_exec_refused(&out);
    // Ordinary work next to the daemon: reading its /proc entries (as `ps` does).
    attempt(t, &["read", &format!("/proc/{daemon}/stat")]).assert_ok();
}

/// Fallback mode kills the caller on entry and the call itself runs: only attempts that change
/// nothing are tried (a signal the daemon does not act on, a trace that does not stop it, a
/// read of an unmapped address); removing pins is not seen (documented), so not tried.
fn blinding_the_enforcer_in_fallback_mode(t: &TestBed, guarded: &str) {
    assert_eq!(protection(t, "enforcer_tamper_by_root"), "detected");
    assert_eq!(protection(t, "guarded_mounts"), "detected");
    let daemon = t.agent().pid().expect("daemon pid").to_string();
    let the_daemon = format!("pid {daemon} (the daemon)");
    let map = t.agent().dirs().bpffs.join("maps").join("GRANTS");
    let cont = attempt(t, &["kill", &daemon, "18"]);
    assert_killed(t, &cont, "signal", &format!("{the_daemon}, signal 18"));
    let seize = attempt(t, &["ptrace-seize", &daemon]);
    assert_killed(t, &seize, "ptrace", &the_daemon);
    let read = attempt(t, &["process-vm-read", &daemon]);
    assert_killed(t, &read, "ptrace", &the_daemon);
    let pidfd = attempt(t, &["pidfd-open", &daemon]);
    assert_killed(
        t,
        &pidfd,
        "signal",
        &format!("{the_daemon}, through a pidfd"),
    );
    let create = attempt(t, &["bpf-map-create"]);
    assert_killed(t, &create, "bpf", "BPF_MAP_CREATE");
    let get = attempt(t, &["bpf-obj-get", &map.to_string_lossy()]);
    assert_killed(t, &get, "bpf", "BPF_OBJ_GET");
    // Mounting bpffs or cgroup2 kills the caller; the mount itself is made.
    let spare = t.dir().join("spare-mounts");
    let spare_s = spare.to_string_lossy().into_owned();
    fs::create_dir_all(&spare).expect("mkdir");
    let bpf = attempt(t, &["mount", "bpf", &spare_s]);
    let cg = attempt(t, &["mount", "cgroup2", &spare_s]);
    let umount = attempt(t, &["umount", &spare_s]);
    while std::process::Command::new("umount")
        .arg(&spare_s)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {}
    assert_killed(t, &bpf, "mount", "bpf file system");
    assert_killed(t, &cg, "mount", "cgroup2 file system");
    assert_killed(t, &umount, "unmount", "not known on entry");
    // A mount the sessions may make: tmpfs.
    attempt(t, &["mount", "tmpfs", &spare_s]).assert_ok();
    let _ = std::process::Command::new("umount").arg(&spare_s).status();

    // None of it stopped the daemon, and the rule holds.
    let status = t.agent().status_json();
    assert_eq!(status["mode"], "fallback", "{status}");
    let out = t.exec(&[guarded]);
    t.assert_exec_refused(&out);
}

fn raw_network_and_kernel_loading(t: &TestBed) {
    let icmp = attempt(t, &["socket", AF_INET, SOCK_RAW, IPPROTO_ICMP]);
    assert_eq!(protection(t, "raw_sockets"), "enforced");
    assert_refused(t, &icmp, "raw_socket", "IPv4 socket, type raw, protocol 1");
    let v6 = attempt(t, &["socket", AF_INET6, SOCK_RAW, "58"]);
    assert_refused(t, &v6, "raw_socket", "IPv6 socket, type raw");
    // ICMP datagram ("ping") sockets send to any address without the sendmsg hook.
    if ping_sockets_open_to_root() || t.mode() == Mode::Lsm {
        let ping = attempt(t, &["socket", AF_INET, SOCK_DGRAM, IPPROTO_ICMP]);
        assert_refused(
            t,
            &ping,
            "raw_socket",
            "IPv4 socket, type datagram, protocol 1",
        );
    } else {
        eprintln!(
            "ping sockets: not tried in fallback mode, net.ipv4.ping_group_range excludes \
             gid 0 here (the kernel refuses them before the cgroup hook runs)"
        );
    }
    let packet = attempt(t, &["socket", AF_PACKET, SOCK_RAW, ETH_P_ALL_BE]);
    if t.mode() == Mode::Fallback {
        // Documented: the cgroup socket hook sees inet sockets only, so a packet socket kills
        // its creator on entry to socket(); reboot and module loads kill the caller; network
        // administration is not seen. Status says so.
        assert_killed(t, &packet, "raw_socket", "packet socket, type raw");
        assert_eq!(protection(t, "packet_sockets"), "detected");
        assert_eq!(protection(t, "host_administration"), "detected");
        let reboot = attempt(t, &["reboot-cad-off"]);
        assert_killed(t, &reboot, "capability", "CAP_SYS_BOOT");
        attempt(t, &["net-admin"]).assert_ok();
        if has_tracepoint("sys_enter_init_module") {
            let module = attempt(t, &["init-module"]);
            assert_killed(t, &module, "kernel_load", "kernel module from memory");
            assert_eq!(protection(t, "kernel_loading"), "detected");
        } else {
            eprintln!("init_module: not tried, this kernel has no module support");
            assert_eq!(protection(t, "kernel_loading"), "absent");
        }
        return;
    }
    assert_refused(t, &packet, "raw_socket", "packet socket, type raw");
    assert_eq!(protection(t, "packet_sockets"), "enforced");
    assert_eq!(protection(t, "host_administration"), "enforced");
    // The capability check comes first (the `kernel_load` guard stays for the loads that
    // check no capability, e.g. firmware).
    let module = attempt(t, &["init-module"]);
    assert_refused(t, &module, "capability", "CAP_SYS_MODULE");
    let reboot = attempt(t, &["reboot-cad-off"]);
    assert_refused(t, &reboot, "capability", "CAP_SYS_BOOT");
    let routes = attempt(t, &["net-admin"]);
    assert_refused(t, &routes, "capability", "CAP_NET_ADMIN");
    // Ordinary network work: TCP and UDP sockets.
    attempt(t, &["socket", AF_INET, "1", "0"]).assert_ok();
    attempt(t, &["socket", AF_INET6, SOCK_DGRAM, "0"]).assert_ok();
}

/// A delegator runs work for whoever connects to its unix socket, outside the session: the
/// container engines, the system manager and bus, every account's runtime directory. The
/// test binds listeners (outside the session) where those services bind theirs.
fn handing_work_to_delegators(t: &TestBed) {
    use std::os::unix::{fs::symlink, net::UnixListener};
    let s = |p: &std::path::Path| p.to_string_lossy().into_owned();
    let (user_bus, _bus) = user_bus();
    // The agent names it its own way: a symlink in its workspace, a hard link elsewhere.
    let work = t.dir().join("delegators");
    fs::create_dir_all(&work).expect("workspace");
    let via_symlink = work.join("my.sock");
    symlink(&user_bus, &via_symlink).expect("symlink");
    let via_link = std::path::PathBuf::from(format!("/run/cs-test-{}.sock", std::process::id()));
    let _ = fs::remove_file(&via_link);
    fs::hard_link(&user_bus, &via_link).expect("hard link to the socket");
    // Ordinary work: a socket of its own kind (a language server, a database) outside.
    let plain = std::path::PathBuf::from(format!("/run/cs-test-{}-plain.sock", std::process::id()));
    let _ = fs::remove_file(&plain);
    let _plain = UnixListener::bind(&plain).expect("bind a plain socket");

    let direct = attempt(t, &["unix-connect", &s(&user_bus)]);
    let symlinked = attempt(t, &["unix-connect", &s(&via_symlink)]);
    let linked = attempt(t, &["unix-connect", &s(&via_link)]);
    attempt(t, &["unix-connect", &s(&plain)]).assert_ok();
    if t.mode() == Mode::Fallback {
        // Documented: no hook sees unix sockets in fallback mode; status says so.
        direct.assert_ok();
        assert_eq!(protection(t, "delegator_sockets"), "absent");
    } else {
        assert_eq!(protection(t, "delegator_sockets"), "enforced");
        let target = format!("unix socket {}", s(&user_bus));
        assert_refused(t, &direct, "delegator", &target);
        assert_refused(t, &symlinked, "delegator", &target);
        assert_refused(t, &linked, "delegator", &target);
        // A tmux server outside the session (the agent's own account's or another's): a
        // window there runs whatever the agent types. One the agent starts itself stays open.
        let tmux = std::path::Path::new("/tmp/tmux-0");
        fs::create_dir_all(tmux).expect("tmux directory");
        let server = tmux.join("default");
        let _ = fs::remove_file(&server);
        let _server = UnixListener::bind(&server).expect("bind a tmux-like server");
        let window = attempt(t, &["unix-connect", &s(&server)]);
        assert_refused(t, &window, "delegator", "unix socket /tmp/tmux-0/default");
        attempt(t, &["unix-serve-self", &s(&tmux.join("own"))]).assert_ok();
        let _ = fs::remove_file(&server);
        // A name of the built-in list, bound where no such service runs in the VM.
        if !std::path::Path::new("/run/docker.sock").exists() {
            let docker = std::path::Path::new("/run/docker.sock");
            let _docker = UnixListener::bind(docker).expect("bind /run/docker.sock");
            let out = attempt(t, &["unix-connect", "/run/docker.sock"]);
            assert_refused(t, &out, "delegator", "unix socket /run/docker.sock");
            let _ = fs::remove_file(docker);
        } else {
            eprintln!("/run/docker.sock: not bound here, a docker daemon owns it");
        }
    }
    for f in [&via_link, &plain] {
        let _ = fs::remove_file(f);
    }
    remove_user_bus(&user_bus);
}

/// A listener where an account's session bus lives (its runtime directory also holds its
/// systemd --user manager and rootless docker): for a uid nobody has, so no real service is
/// disturbed.
/// cron and at run later, outside every session, what is written in their spools: a root
/// agent may not write a job there (LSM mode); reading them stays allowed. In fallback mode
/// nothing sees it, status says so, and the test does not write the host's cron spools.
#[test]
fn a_root_agent_cannot_hand_work_to_cron_or_at() {
    let mut t = testbed("no-cron");
    let spools = [
        std::path::Path::new("/etc/cron.d"),
        std::path::Path::new("/var/spool/cron/crontabs"),
    ];
    let crontab = spools[1].join("root");
    if t.mode() == Mode::Lsm {
        // The VM has no cron: make its spools before the daemon starts, as cron's package
        // would.
        for dir in spools {
            fs::create_dir_all(dir).expect("spool directory");
        }
        fs::write(&crontab, "# nothing scheduled\n").expect("root's crontab");
    }
    t.start_agent(&t.policy(""));
    if t.mode() == Mode::Fallback {
        assert_eq!(protection(&t, "delegator_spools"), "absent");
        return;
    }
    assert_eq!(protection(&t, "delegator_spools"), "enforced");
    let s = |p: &std::path::Path| p.to_string_lossy().into_owned();
    let job = spools[0].join("escape");
    let new_job = attempt(&t, &["create", &s(&job)]);
    assert_refused(&t, &new_job, "delegator", "escape in a cron or at spool");
    let edit = attempt(&t, &["write", &s(&crontab)]);
    assert_refused(&t, &edit, "delegator", "root in a cron or at spool");
    let renamed = spools[1].join("daemon");
    let moved = attempt(&t, &["rename", &s(&crontab), &s(&renamed)]);
    assert_refused(&t, &moved, "delegator", "root in a cron or at spool");
    assert!(!job.exists() && !renamed.exists());
    assert_eq!(
        fs::read_to_string(&crontab).expect("crontab"),
        "# nothing scheduled\n"
    );
    // Reading them is ordinary work (`crontab -l`).
    attempt(&t, &["read", &s(&crontab)]).assert_ok();
}

fn user_bus() -> (std::path::PathBuf, std::os::unix::net::UnixListener) {
    let runtime =
        std::path::PathBuf::from(format!("/run/user/{}", 64_000 + std::process::id() % 1000));
    fs::create_dir_all(&runtime).expect("runtime dir");
    let bus = runtime.join("bus");
    let _ = fs::remove_file(&bus);
    let listener = std::os::unix::net::UnixListener::bind(&bus).expect("bind the user bus");
    (bus, listener)
}

fn remove_user_bus(bus: &std::path::Path) {
    let _ = fs::remove_file(bus);
    if let Some(runtime) = bus.parent() {
        let _ = fs::remove_dir(runtime);
    }
}

/// A group may opt out of a guard by name (`permit:`); only what it names opens, in both
/// modes.
#[test]
fn a_group_opts_out_of_exactly_the_guards_it_names() {
    let mut t = testbed("permits");
    t.start_agent(&t.policy_with(
        GroupSettings {
            permit: &["ping", "delegators"],
            ..GroupSettings::default()
        },
        "",
    ));
    let ping = attempt(&t, &["socket", AF_INET, SOCK_DGRAM, IPPROTO_ICMP]);
    if ping_sockets_open_to_root() {
        ping.assert_ok();
    } else {
        // net.ipv4.ping_group_range excludes gid 0 here: past the guard (which would say
        // EPERM), the kernel's own check refuses.
        ping.assert_errno(libc::EACCES);
    }
    let raw = attempt(&t, &["socket", AF_INET, SOCK_RAW, IPPROTO_ICMP]);
    assert_refused(&t, &raw, "raw_socket", "IPv4 socket, type raw, protocol 1");
    let (bus, _listener) = user_bus();
    let connected = attempt(&t, &["unix-connect", &bus.to_string_lossy()]);
    remove_user_bus(&bus);
    connected.assert_ok();
    if t.mode() == Mode::Lsm {
        let packet = attempt(&t, &["socket", AF_PACKET, SOCK_RAW, ETH_P_ALL_BE]);
        assert_refused(&t, &packet, "raw_socket", "packet socket, type raw");
        let status = t.agent().status_json();
        let how = status["protections"]
            .as_array()
            .and_then(|all| all.iter().find(|p| p["name"] == "delegator_sockets"))
            .map(|p| p["how"].to_string())
            .unwrap_or_default();
        assert!(
            how.contains("permitted by the policy to permits (delegators)"),
            "{status}"
        );
    }
}

/// Fallback mode marks the files a session opens for writing at the exits of the open
/// system calls, which io_uring's opens never pass: there, setting up a ring kills the caller
/// (what it wrote through the ring would run unchecked by content), unless the group permits
/// `io_uring`. LSM mode marks in `file_open`, which a ring's opens pass too: nothing refuses it.
#[test]
fn an_io_uring_is_fatal_only_where_its_opens_would_go_unmarked() {
    let mut t = testbed("io-uring");
    t.start_agent(&t.policy(""));
    let ring = attempt(&t, &["io-uring-setup"]);
    if t.mode() == Mode::Fallback {
        assert_killed(&t, &ring, "io_uring", "an io_uring of 4 entries");
    } else {
        assert_not_killed(&ring);
    }
    t.write_policy(&t.policy_with(
        GroupSettings {
            permit: &["io_uring"],
            ..GroupSettings::default()
        },
        "",
    ));
    t.agent().reload();
    assert_not_killed(&attempt(&t, &["io-uring-setup"]));
}

/// The probe lived through its call: the kernel's own answer (a ring, or `io_uring_disabled`'s
/// refusal) is whatever it is.
fn assert_not_killed(out: &Outcome) {
    assert!(
        !matches!(out.verdict(), Verdict::Killed { .. }),
        "not killed: {out}"
    );
}

/// Whether `net.ipv4.ping_group_range` lets gid 0 create ICMP datagram sockets.
fn ping_sockets_open_to_root() -> bool {
    let range = fs::read_to_string("/proc/sys/net/ipv4/ping_group_range").unwrap_or_default();
    let mut ends = range
        .split_whitespace()
        .map(|n| n.parse::<i64>().unwrap_or(-1));
    matches!((ends.next(), ends.next()), (Some(0), Some(hi)) if hi >= 0)
}

fn touching_the_daemons_files(t: &TestBed, guarded: &str) {
    let dirs = t.agent().dirs();
    let (policy, state) = (dirs.policy.clone(), dirs.state.clone());
    let s = |p: &std::path::Path| p.to_string_lossy().into_owned();
    let log = s(&state.join("events.jsonl"));
    let policy_s = s(&policy);
    // Ordinary work: files in the agent's own workspace.
    let work = t.dir().join("work");
    fs::create_dir_all(&work).expect("mkdir");
    let mine = s(&work.join("notes.txt"));
    attempt(t, &["create", &mine]).assert_ok();
    attempt(t, &["write", &mine]).assert_ok();
    if t.mode() == Mode::Fallback {
        // Documented: fallback mode does not guard the daemon's files; status says so.
        assert_eq!(protection(t, "enforcer_files"), "absent");
        return;
    }
    assert_eq!(protection(t, "enforcer_files"), "enforced");
    let write = attempt(t, &["write", &log]);
    assert_refused(t, &write, "enforcer_file", "events.jsonl");
    let create = attempt(t, &["create", &s(&state.join("forged.jsonl"))]);
    assert_refused(t, &create, "enforcer_file", "forged.jsonl");
    let unlink = attempt(t, &["unlink", &log]);
    assert_refused(t, &unlink, "enforcer_file", "events.jsonl");
    let link = attempt(t, &["link", &log, &s(&work.join("log"))]);
    assert_refused(t, &link, "enforcer_file", "events.jsonl");
    let replace = attempt(t, &["rename", &mine, &policy_s]);
    assert_refused(t, &replace, "enforcer_file", "policy.yaml");
    let edit = attempt(t, &["write", &policy_s]);
    assert_refused(t, &edit, "enforcer_file", "policy.yaml");
    let truncate = attempt(t, &["truncate", &policy_s]);
    assert_refused(t, &truncate, "enforcer_file", "policy.yaml");
    let moved = attempt(t, &["rename", &s(&state), &s(&t.dir().join("state.moved"))]);
    assert_refused(t, &moved, "enforcer_file", "state");
    // Nothing of it landed: the policy still refuses the guarded binary, the log is whole.
    assert!(
        fs::read_to_string(&policy)
            .expect("policy")
            .contains("no-guarded"),
        "the policy file was changed"
    );
    let out = t.exec(&[guarded]);
    t.assert_exec_refused(&out);
    // Reading them stays ordinary work.
    attempt(t, &["read", &log]).assert_ok();
}

#[test]
fn root_sessions_need_the_operators_consent_in_fallback_mode() {
    let mut t = testbed("root-sessions");
    // The daemon's default, said explicitly (the harness allows root sessions otherwise).
    t.agent_mut()
        .set_run_options(vec!["--root-agents".into(), "refuse".into()]);
    t.start_agent(&t.policy(""));
    let run_dir = t.agent().run_dir();
    let launch = |user: Option<&str>, session: &str| {
        let mut cmd = t.agent().command();
        cmd.args(["launch", "--agent", t.name(), "--session", session])
            .args(["--run-dir", &run_dir]);
        if let Some(u) = user {
            cmd.args(["--user", u]);
        }
        cmd.args(["--", "/bin/sh", "-c", "id -u; id -G"]);
        t.spawn_command(cmd, session).wait()
    };
    // An unprivileged session starts in both modes, as that uid, without the launcher's
    // supplementary groups.
    let as_user = launch(Some("65534"), "as-user");
    as_user.assert_success();
    assert_eq!(as_user.stdout, "65534\n65534\n", "{as_user}");
    let as_root = launch(None, "as-root");
    match t.mode() {
        // The guards hold against root: root sessions start.
        Mode::Lsm => {
            as_root.assert_success();
            assert!(as_root.stdout.starts_with("0\n"), "{as_root}");
        }
        Mode::Fallback => {
            as_root.assert_exit(1);
            assert!(
                as_root.stderr.contains("--root-agents refuse")
                    && as_root.stderr.contains("--user"),
                "{as_root}"
            );
            assert!(as_root.stdout.is_empty(), "nothing ran: {as_root}");
            assert_eq!(protection(&t, "root_sessions"), "enforced");
        }
    }
    let unknown = launch(Some("no-such-user-here"), "unknown");
    unknown.assert_exit(1);
    assert!(
        unknown
            .stderr
            .contains("--user no-such-user-here: no such user"),
        "{unknown}"
    );
}
