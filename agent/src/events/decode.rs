//! Turning a kernel [`Event`] into a [`Record`]: names, addresses, flags, time.

use std::net::Ipv6Addr;

use agent_common::{
    event::{flags, Event, EventKind},
    Action, Mode, Outcome,
};

use super::record::{Destination, Record};

/// What the decoder needs to know beyond the event itself.
pub trait Names {
    /// Rule id of `rule` (index + 1) in policy generation `generation`.
    fn rule(&self, generation: u32, rule: u32) -> Option<String>;
    /// Agent group name of group id `group` in `generation`.
    fn group(&self, generation: u32, group: u32) -> Option<String>;
    /// A path that names binary id `binary` in `generation`.
    fn binary(&self, _generation: u32, _binary: u32) -> Option<String> {
        None
    }
}

/// Decodes raw ring buffer bytes; None when they are not an event of this build.
pub fn parse(bytes: &[u8]) -> Option<Event> {
    if bytes.len() < std::mem::size_of::<Event>() {
        return None;
    }
    // SAFETY: Event is plain data (Pod) and the buffer holds at least one; the ring buffer
    // does not guarantee alignment, hence the unaligned read.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<Event>()) })
}

/// An event whose kind, action or mode this build does not know (its kernel programs and
/// this decoder come from one build, so only corruption gets here).
#[derive(Debug, PartialEq, Eq)]
pub struct Unknown {
    pub kind: u32,
    pub action: u32,
    pub mode: u32,
}

/// Builds the record; `wall_ns` converts the event's monotonic time to wall-clock time.
pub fn record(
    e: &Event,
    names: &dyn Names,
    wall_ns: impl Fn(u64) -> u64,
) -> Result<Record, Unknown> {
    let (Some(kind), Some(action), Some(mode)) = (
        EventKind::from_u32(e.kind),
        Action::from_u32(e.action),
        Mode::from_u32(e.mode),
    ) else {
        return Err(Unknown {
            kind: e.kind,
            action: e.action,
            mode: e.mode,
        });
    };
    let unknown = || Unknown {
        kind: e.kind,
        action: e.action,
        mode: e.mode,
    };
    let tamper = match kind {
        EventKind::Tamper => Some(super::tamper::attempt(e).ok_or_else(unknown)?),
        _ => None,
    };
    let exec = matches!(kind, EventKind::Exec | EventKind::ArgvMismatch);
    Ok(Record {
        time: rfc3339(wall_ns(e.ktime_ns)),
        kind,
        action,
        outcome: outcome(e, action),
        mode,
        rule: if e.rule == 0 {
            None
        } else {
            names.rule(e.generation, e.rule)
        },
        rule_number: e.rule,
        agent: names.group(e.generation, e.group),
        session: None,
        cgroup: None,
        cgroup_id: e.cgroup_id,
        pid: e.pid,
        tgid: e.tgid,
        ppid: (e.ppid != 0).then_some(e.ppid),
        uid: e.uid,
        gid: e.gid,
        comm: c_string(&e.comm),
        binary: exec.then(|| lossy(&e.path[..(e.path_len as usize).min(e.path.len())])),
        dev: exec.then(|| format!("{}:{}", e.dev >> 20, e.dev & 0xfffff)),
        ino: exec.then_some(e.ino),
        argv: argv(e),
        argv_truncated: e.flags & flags::ARGV_TRUNCATED != 0,
        fingerprint: agent_common::binding::Binding::of_event(e)
            .map(|b| b.id())
            .unwrap_or_default(),
        grant_id: (e.flags & flags::GRANT_USED != 0).then_some(e.grant_id),
        destination: (kind == EventKind::Connect).then(|| destination(e)),
        parents: Vec::new(),
        flags: flag_names(e.flags),
        generation: e.generation,
        tamper,
        write_stamp: (exec && e.stamp != 0).then_some(e.stamp),
        agent_written: exec && e.flags & flags::AGENT_WRITTEN != 0,
        copy_of: (exec && e.flags & flags::COPY != 0).then(|| {
            names
                .binary(e.generation, e.detail)
                .unwrap_or_else(|| format!("binary {}", e.detail))
        }),
    })
}

fn outcome(e: &Event, action: Action) -> Outcome {
    if e.flags & flags::GRANT_USED != 0 {
        Outcome::Granted
    } else if e.flags & flags::MONITOR != 0 {
        Outcome::WouldRefuse
    } else if e.flags & flags::KILLED != 0 {
        Outcome::Killed
    } else if action.refuses() {
        Outcome::Refused
    } else {
        Outcome::Allowed
    }
}

fn destination(e: &Event) -> Destination {
    let v6 = Ipv6Addr::from(e.addr);
    let (address, family) = match (e.family, v6.to_ipv4_mapped()) {
        (2, Some(v4)) => (v4.to_string(), "ipv4"),
        _ => (v6.to_string(), "ipv6"),
    };
    Destination {
        address,
        port: e.port,
        protocol: match e.protocol {
            6 => "tcp".into(),
            17 => "udp".into(),
            p => p.to_string(),
        },
        family: family.into(),
    }
}

fn flag_names(f: u32) -> Vec<String> {
    [
        (flags::ARGV_FROM_IMAGE, "argv_from_image"),
        (flags::INTERPRETED, "interpreted"),
        (flags::SENDMSG, "sendmsg"),
        (flags::FAILED_CLOSED, "failed_closed"),
        (flags::AGENT_WRITTEN, "agent_written"),
        (flags::COPY, "copy"),
    ]
    .iter()
    .filter(|(bit, _)| f & bit != 0)
    .map(|(_, n)| (*n).to_string())
    .collect()
}

/// argv[0] from its slot, then argv[1..] from the NUL-separated tail.
fn argv(e: &Event) -> Vec<String> {
    if e.argc == 0 {
        return Vec::new();
    }
    let mut v = vec![c_string(&e.argv0)];
    let tail = &e.argv[..(e.argv_len as usize).min(e.argv.len())];
    if tail.is_empty() {
        return v;
    }
    // Every argument ends with its NUL, so `"\0"` is one empty argument, not none.
    let tail = tail.strip_suffix(&[0]).unwrap_or(tail);
    v.extend(tail.split(|c| *c == 0).map(lossy));
    v
}

pub(super) fn c_string(b: &[u8]) -> String {
    lossy(b.split(|c| *c == 0).next().unwrap_or_default())
}

pub(super) fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn rfc3339(wall_ns: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(wall_ns);
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn decoded(e: &Event, names: &dyn Names, wall_ns: impl Fn(u64) -> u64) -> Record {
        record(e, names, wall_ns).expect("an event of this build")
    }

    #[test]
    fn events_of_another_build_are_named_not_guessed() {
        let mut e = event();
        e.action = 9;
        assert_eq!(
            record(&e, &N, |t| t),
            Err(Unknown {
                kind: EventKind::Exec as u32,
                action: 9,
                mode: Mode::Lsm as u32
            })
        );
    }

    #[test]
    fn a_copy_names_the_binary_it_copies() {
        let mut e = event();
        e.flags = flags::AGENT_WRITTEN | flags::COPY;
        e.detail = 3;
        let r = decoded(&e, &N, |t| t);
        assert!(r.agent_written);
        assert_eq!(r.copy_of.as_deref(), Some("/bin/b3"));
        assert_eq!(r.flags, ["agent_written", "copy"]);
        let line = serde_json::to_string(&r).expect("json");
        assert!(
            line.contains(r#""agent_written":true,"copy_of":"/bin/b3""#),
            "{line}"
        );
        // Other events carry neither field, so their lines stay what they were.
        let plain = serde_json::to_string(&decoded(&event(), &N, |t| t)).expect("json");
        assert!(
            !plain.contains("agent_written") && !plain.contains("copy_of"),
            "{plain}"
        );
    }

    struct N;
    impl Names for N {
        fn rule(&self, _: u32, rule: u32) -> Option<String> {
            Some(format!("r{rule}"))
        }
        fn group(&self, _: u32, group: u32) -> Option<String> {
            Some(format!("g{group}"))
        }
        fn binary(&self, _: u32, binary: u32) -> Option<String> {
            Some(format!("/bin/b{binary}"))
        }
    }

    pub(crate) fn event() -> Event {
        // SAFETY: all-zero is a valid Event.
        let mut e: Event = unsafe { std::mem::zeroed() };
        e.kind = EventKind::Exec as u32;
        e.action = Action::Deny as u32;
        e.mode = Mode::Lsm as u32;
        e.rule = 2;
        e.group = 1;
        e.dev = (8 << 20) | 1;
        e.ino = 42;
        e.comm[..4].copy_from_slice(b"bash");
        e.argv0[..7].copy_from_slice(b"kubectl");
        let argv = b"delete\0pod\0";
        e.argv[..argv.len()].copy_from_slice(argv);
        e.argv_len = argv.len() as u32;
        e.argc = 3;
        e.path[..16].copy_from_slice(b"/usr/bin/kubectl");
        e.path_len = 16;
        e.fingerprint = 0xab;
        e
    }

    #[test]
    fn exec_refusal() {
        let r = decoded(&event(), &N, |_| 1_700_000_000_000_000_000);
        assert_eq!(r.kind, EventKind::Exec);
        assert_eq!(r.outcome, Outcome::Refused);
        assert_eq!(r.rule.as_deref(), Some("r2"));
        assert_eq!(r.agent.as_deref(), Some("g1"));
        assert_eq!(r.argv, ["kubectl", "delete", "pod"]);
        assert_eq!(r.binary.as_deref(), Some("/usr/bin/kubectl"));
        assert_eq!(r.dev.as_deref(), Some("8:1"));
        assert_eq!(r.comm, "bash");
        // The operation id of exactly this exec, not the kernel's lookup hash.
        let op = agent_common::binding::Binding::of_event(&event()).expect("an exec");
        assert_eq!(r.fingerprint, op.id());
        assert_eq!(
            op,
            agent_common::binding::Binding::exec(
                2,
                (8 << 20) | 1,
                42,
                &["kubectl", "delete", "pod"]
            )
        );
        assert_eq!(r.time, "2023-11-14T22:13:20.000Z");
    }

    #[test]
    fn the_server_recomputes_the_id_of_every_logged_exec() {
        // What the event log shows (and the daemon uploads) is enough for the control plane
        // to recompute the id: empty arguments, a trailing empty one, spaces, no arguments.
        let tails: [&[u8]; 6] = [
            b"",
            b"\0",
            b"a\0\0",
            b"\0\0b\0",
            b"delete\0pod name\0",
            b"--x=\xc3\xa9\0",
        ];
        for tail in tails {
            let mut e = event();
            e.action = Action::Approve as u32;
            e.argv = [0; agent_common::ARGV_LEN];
            e.argv[..tail.len()].copy_from_slice(tail);
            e.argv_len = tail.len() as u32;
            let r = decoded(&e, &N, |t| t);
            let op = crate::uplink::convert::operation(&r, None);
            assert_eq!(
                countersign_api::binding::verify(&op),
                Ok(()),
                "{tail:?} logged as {:?}",
                r.argv
            );
        }
        // Bytes that are not UTF-8 cannot be shown exactly, so they cannot be approved.
        let mut e = event();
        e.argv[..3].copy_from_slice(b"\xff\xfe\0");
        e.argv_len = 3;
        let op = crate::uplink::convert::operation(&decoded(&e, &N, |t| t), None);
        assert_eq!(
            countersign_api::binding::verify(&op),
            Err(countersign_api::binding::Unbound::Mismatch)
        );
    }

    #[test]
    fn outcomes_follow_flags() {
        let mut e = event();
        e.flags = flags::KILLED;
        assert_eq!(decoded(&e, &N, |t| t).outcome, Outcome::Killed);
        e.flags = flags::MONITOR;
        assert_eq!(decoded(&e, &N, |t| t).outcome, Outcome::WouldRefuse);
        e.flags = flags::GRANT_USED;
        e.grant_id = 7;
        let r = decoded(&e, &N, |t| t);
        assert_eq!((r.outcome, r.grant_id), (Outcome::Granted, Some(7)));
    }

    #[test]
    fn v4_mapped_destinations() {
        let mut e = event();
        e.kind = EventKind::Connect as u32;
        e.addr = Ipv6Addr::from([0, 0, 0, 0, 0, 0xffff, 0x7f00, 2]).octets();
        e.port = 5432;
        e.protocol = 6;
        e.family = 2;
        let d = decoded(&e, &N, |t| t).destination.expect("destination");
        assert_eq!(
            (d.address.as_str(), d.family.as_str()),
            ("127.0.0.2", "ipv4")
        );
        e.family = 10;
        let d = decoded(&e, &N, |t| t).destination.expect("destination");
        assert_eq!(
            (d.address.as_str(), d.family.as_str()),
            ("::ffff:127.0.0.2", "ipv6")
        );
    }

    #[test]
    fn short_buffers_are_rejected() {
        assert!(parse(&[0u8; 10]).is_none());
    }
}
