//! Kernel map entries: binary ids, slot expansion, trie prefixes and their rule lists.

use agent_common::{
    hash,
    policy::{ExecSlot, NetRules, ANY_BINARY, ANY_GROUP, ANY_PROTOCOL, EXEC_SLOTS},
    Action,
};

use super::{id, policy, MapResolver};
use crate::{compile, Compiled};

const POLICY: &str = r#"
version: 1
agents:
  - name: ai
    cgroup: /a
    default: { exec: audit, network: deny }
    monitor: true
  - name: bots
    cgroup: /b
rules:
  - id: kubectl
    exec:
      binary: [/usr/bin/kubectl, /usr/local/bin/kubectl, /opt/missing/kubectl]
      args: ["delete|apply", "*", "x|y"]
    action: approve
  - id: any-force
    agents: [ai, bots]
    exec: { args: ["--force"], parent: [/usr/bin/python3, /usr/bin/node] }
    action: deny
  - id: kubectl-all
    exec: { binary: /usr/bin/kubectl }
    action: audit
  - id: ghost
    exec: { binary: /nowhere/ghost }
    action: deny
  - id: wide
    network: { cidr: [10.0.0.0/8], ports: [22, "8000-8100"] }
    action: deny
  - id: narrow
    agents: [bots]
    network: { cidr: [10.20.0.0/16, "fd00::/8"], protocol: tcp }
    action: approve
  - id: all-dns
    network: { ports: [53], protocol: udp }
    action: audit
"#;

fn host() -> MapResolver {
    MapResolver::with(&[
        ("/usr/bin/kubectl", 10),
        ("/usr/local/bin/kubectl", 10),
        ("/usr/bin/python3", 12),
        ("/usr/bin/node", 13),
    ])
}

fn compiled(generation: u32) -> Compiled {
    compile(&policy(POLICY), generation, &host()).unwrap_or_else(|e| panic!("compiles:\n{e}"))
}

fn slots(c: &Compiled, binary: u32) -> Vec<ExecSlot> {
    let (_, v) = c
        .exec_rules
        .iter()
        .find(|(k, _)| k.binary == binary)
        .expect("key present");
    v.slots[..v.count as usize].to_vec()
}

#[test]
fn groups() {
    let c = compiled(1);
    assert_eq!(c.groups.len(), 2);
    let g = &c.groups[0];
    assert_eq!(
        (g.index, g.name.as_str(), g.cgroup.as_str()),
        (0, "ai", "/a")
    );
    assert_eq!(g.group.id, 1);
    assert_eq!(g.group.flags, agent_common::policy::group_flags::MONITOR);
    assert_eq!(
        (g.group.default_exec, g.group.default_net),
        (Action::Audit as u32, Action::Deny as u32)
    );
    assert_eq!(g.group.level, 0, "the daemon sets the level");
    assert_eq!((c.groups[1].group.id, c.groups[1].group.flags), (2, 0));
    assert_eq!(c.group_name(2), Some("bots"));
    assert_eq!(c.group_name(3), None);
}

#[test]
fn binaries_once_each_ids_from_one() {
    let c = compiled(1);
    let got: Vec<(u64, u64, u32, u32)> = c
        .binaries
        .iter()
        .map(|(k, v)| (k.dev, k.ino, k.generation, *v))
        .collect();
    let dev = id(0).dev;
    assert_eq!(got, [(dev, 10, 1, 1), (dev, 12, 1, 2), (dev, 13, 1, 3)]);
    assert_eq!(
        c.binary_path(1),
        Some(std::path::Path::new("/usr/bin/kubectl"))
    );
    assert_eq!(
        c.binary_path(2),
        Some(std::path::Path::new("/usr/bin/python3"))
    );
}

#[test]
fn missing_paths_are_warnings() {
    let c = compiled(0);
    let w: Vec<String> = c.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        w,
        [
            "p.yaml:13: rule 'kubectl': binary /opt/missing/kubectl does not exist on this host: ignored here",
            "p.yaml:24: rule 'ghost': binary /nowhere/ghost does not exist on this host: ignored here",
            "p.yaml:23: rule 'ghost': no binary of this rule exists on this host: the rule never matches here",
        ]
    );
}

#[test]
fn exec_slots_expand_alternatives_in_rule_order() {
    let c = compiled(0);
    assert_eq!(
        c.exec_rules
            .iter()
            .map(|(k, _)| (k.generation, k.binary))
            .collect::<Vec<_>>(),
        [(0, ANY_BINARY), (0, 1)]
    );
    let kubectl = slots(&c, 1);
    let h = |s: &str| hash::arg(s.as_bytes()).expect("short literal");
    let args: Vec<[u64; 3]> = kubectl
        .iter()
        .map(|s| [s.args[0], s.args[1], s.args[2]])
        .collect();
    assert_eq!(
        &args[..4],
        [
            [h("delete"), hash::ANY_ARG, h("x")],
            [h("delete"), hash::ANY_ARG, h("y")],
            [h("apply"), hash::ANY_ARG, h("x")],
            [h("apply"), hash::ANY_ARG, h("y")],
        ]
    );
    let head: Vec<(u32, u32, u32, u32, u32)> = kubectl
        .iter()
        .map(|s| (s.rule, s.action, s.group, s.parent, s.nargs))
        .collect();
    let approve = Action::Approve as u32;
    assert_eq!(head[..4], [(1, approve, ANY_GROUP, ANY_BINARY, 3); 4]);
    // Then kubectl-all, after all of rule 1 (both kubectl paths are one identity: no repeat).
    assert_eq!(kubectl.len(), 5);
    assert_eq!(
        (kubectl[4].rule, kubectl[4].action, kubectl[4].nargs),
        (3, Action::Audit as u32, 0)
    );
    assert!(kubectl[4].args.iter().all(|a| *a == hash::ANY_ARG));
}

#[test]
fn one_slot_per_listed_group_and_parent() {
    let c = compiled(0);
    let any = slots(&c, ANY_BINARY);
    let got: Vec<(u32, u32, u32)> = any.iter().map(|s| (s.rule, s.group, s.parent)).collect();
    assert_eq!(got, [(2, 1, 2), (2, 1, 3), (2, 2, 2), (2, 2, 3)]);
    assert!(any
        .iter()
        .all(|s| Some(s.args[0]) == hash::arg(b"--force") && s.nargs == 1));
}

#[test]
fn too_many_slots_for_one_binary_name_the_rules() {
    let rule = |id: &str| {
        format!("  - id: {id}\n    exec: {{ binary: /usr/bin/kubectl, args: [\"a|b|c\", \"e|f\"] }}\n    action: deny\n")
    };
    let two = format!("{}rules:\n{}{}", super::HEADER, rule("one"), rule("two"));
    compile(&policy(&two), 0, &host()).expect("12 slots fit");
    let three = format!("{two}{}", rule("three"));
    let e = compile(&policy(&three), 0, &host()).expect_err("overflow");
    assert_eq!(
        e.to_string(),
        format!(
            "p.yaml:12: rule 'three': binary /usr/bin/kubectl would need 18 kernel slots, at most {EXEC_SLOTS}: \
             rules 'one' (6), 'two' (6), 'three' (6); reduce argument alternatives or split by binary"
        )
    );
}

/// (rule, group, port_lo, port_hi, protocol)
type Slot = (u32, u32, u16, u16, u16);

/// (prefix length, address, slots) of every trie entry.
fn net(c: &Compiled) -> Vec<(u32, [u8; 16], Vec<Slot>)> {
    c.net_rules
        .iter()
        .map(|(len, k, v): &(u32, _, NetRules)| {
            assert_eq!(k.generation, c.generation.to_be_bytes());
            let s = v.slots[..v.count as usize]
                .iter()
                .map(|s| (s.rule, s.group, s.port_lo, s.port_hi, s.protocol));
            (*len, k.addr, s.collect())
        })
        .collect()
}

fn v4(a: u8, b: u8) -> [u8; 16] {
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, 0, 0]
}

#[test]
fn trie_prefixes_list_every_covering_rule() {
    let c = compiled(1);
    assert_eq!(1u32.to_be_bytes(), [0, 0, 0, 1]);
    let mut fd = [0u8; 16];
    fd[0] = 0xfd;
    let (tcp, udp) = (libc::IPPROTO_TCP as u16, libc::IPPROTO_UDP as u16);
    let dns = (7, ANY_GROUP, 53, 53, udp);
    assert_eq!(
        net(&c),
        [
            (32, [0; 16], vec![dns]),
            (32 + 8, fd, vec![(6, 2, 0, 65535, tcp), dns]),
            (
                32 + 96 + 8,
                v4(10, 0),
                vec![
                    (5, ANY_GROUP, 22, 22, ANY_PROTOCOL),
                    (5, ANY_GROUP, 8000, 8100, ANY_PROTOCOL),
                    dns
                ]
            ),
            (
                32 + 96 + 16,
                v4(10, 20),
                vec![
                    (5, ANY_GROUP, 22, 22, ANY_PROTOCOL),
                    (5, ANY_GROUP, 8000, 8100, ANY_PROTOCOL),
                    (6, 2, 0, 65535, tcp),
                    dns,
                ]
            ),
        ]
    );
    let (_, _, v) = &c.net_rules[0];
    assert_eq!(v.slots[0].action, Action::Audit as u32);
}

#[test]
fn equal_prefixes_written_two_ways_are_one_key() {
    let text = format!(
        "{}rules:\n  - id: a\n    network: {{ cidr: [10.0.0.0/8] }}\n    action: deny\n  - id: b\n    network: {{ cidr: [\"::ffff:10.0.0.0/104\"] }}\n    action: deny\n",
        super::HEADER
    );
    let c = compile(&policy(&text), 0, &host()).expect("compiles");
    assert_eq!(c.net_rules.len(), 1);
    assert_eq!(c.net_rules[0].2.count, 2);
}

#[test]
fn too_many_rules_under_one_prefix() {
    let mut text = format!("{}rules:\n", super::HEADER);
    for i in 0..9 {
        text += &format!(
            "  - id: r{i}\n    network: {{ ports: [{}, {}] }}\n    action: deny\n",
            i + 1,
            i + 100
        );
    }
    let e = compile(&policy(&text), 0, &host()).expect_err("overflow");
    let e = e.to_string();
    assert!(
        e.starts_with(
            "p.yaml:30: rule 'r8': addresses in ::/0 are covered by 18 kernel slots, at most 16"
        ),
        "{e}"
    );
}

#[test]
fn rule_numbers_map_back_to_ids() {
    let c = compiled(0);
    assert_eq!(c.rule_id(0), None);
    assert_eq!(c.rule_id(1), Some("kubectl"));
    assert_eq!(c.rule_id(7), Some("all-dns"));
    assert_eq!(c.rule_id(8), None);
}

#[test]
fn guarded_elf_binaries_are_known_by_their_normalised_head() {
    let text = format!(
        "{}rules:\n  - id: k\n    exec: {{ binary: [/usr/bin/kubectl, /usr/local/bin/kubectl] }}\n    \
         action: deny\n  - id: s\n    exec: {{ binary: /opt/deploy.sh }}\n    action: approve\n  \
         - id: p\n    exec: {{ binary: /usr/bin/python3 }}\n    action: audit\n",
        super::HEADER
    );
    let host = MapResolver::with(&[
        ("/usr/bin/kubectl", 10),
        ("/usr/local/bin/kubectl", 10),
        ("/opt/deploy.sh", 11),
        ("/usr/bin/python3", 12),
    ]);
    let c = compile(&policy(&text), 1, &host).unwrap_or_else(|e| panic!("compiles:\n{e}"));
    let mut kubectl = super::elf_head(10);
    agent_common::identity::normalise(&mut kubectl);
    assert_eq!(kubectl[9], 0, "padding cleared");
    let heads: Vec<([u8; agent_common::identity::HEAD_LEN], u32, u32)> = c
        .contents
        .iter()
        .map(|(k, v)| (k.head, k.generation, *v))
        .collect();
    // One entry per ELF binary (the two kubectl paths are one file), none for the script.
    assert_eq!(
        heads.len(),
        2,
        "{:?}",
        c.contents.iter().map(|e| e.1).collect::<Vec<_>>()
    );
    assert_eq!(heads[0], (kubectl, 1, 1));
    assert_eq!((heads[1].1, heads[1].2), (1, 3));
    assert_eq!(
        c.binary_path(3),
        Some(std::path::Path::new("/usr/bin/python3"))
    );
}
