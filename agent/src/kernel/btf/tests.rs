//! Parser tests: a hand-built blob with known bytes, and the host kernel's own BTF.

use super::raw::{self, Raw};
use std::path::Path;

use super::{resolve_offsets, Btf, BtfError, VMLINUX_BTF};

/// Builds a raw BTF blob record by record, in either byte order.
struct Blob {
    big_endian: bool,
    types: Vec<u8>,
    strings: Vec<u8>,
    next_id: u32,
}

impl Blob {
    fn new(big_endian: bool) -> Self {
        Self {
            big_endian,
            types: Vec::new(),
            strings: vec![0],
            next_id: 1,
        }
    }

    fn word(&mut self, v: u32) {
        let b = if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.types.extend_from_slice(&b);
    }

    fn name(&mut self, name: &str) -> u32 {
        if name.is_empty() {
            return 0;
        }
        let off = u32::try_from(self.strings.len()).expect("small blob");
        self.strings.extend_from_slice(name.as_bytes());
        self.strings.push(0);
        off
    }

    /// Appends a record and its kind-specific words; returns its type id.
    fn ty(
        &mut self,
        name: &str,
        kind: u8,
        kflag: bool,
        vlen: u32,
        size_or_type: u32,
        extra: &[u32],
    ) -> u32 {
        let name_off = self.name(name);
        self.word(name_off);
        self.word(u32::from(kflag) << 31 | u32::from(kind) << 24 | vlen);
        self.word(size_or_type);
        for &w in extra {
            self.word(w);
        }
        self.next_id += 1;
        self.next_id - 1
    }

    /// A struct or union from `(name, type id, offset word)` members.
    fn composite(
        &mut self,
        name: &str,
        kind: u8,
        kflag: bool,
        size: u32,
        members: &[(&str, u32, u32)],
    ) -> u32 {
        let mut extra = Vec::new();
        for &(m, type_id, offset) in members {
            extra.extend([self.name(m), type_id, offset]);
        }
        let vlen = u32::try_from(members.len()).expect("few members");
        self.ty(name, kind, kflag, vlen, size, &extra)
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let magic: u16 = 0xeb9f;
        out.extend(if self.big_endian {
            magic.to_be_bytes()
        } else {
            magic.to_le_bytes()
        });
        out.extend([1, 0]); // version, flags
        let type_len = u32::try_from(self.types.len()).expect("small blob");
        let str_len = u32::try_from(self.strings.len()).expect("small blob");
        for w in [24, 0, type_len, type_len, str_len] {
            out.extend(if self.big_endian {
                u32::to_be_bytes(w)
            } else {
                u32::to_le_bytes(w)
            });
        }
        out.extend(&self.types);
        out.extend(&self.strings);
        out
    }
}

/// ```c
/// struct outer;                          // an empty placeholder first: the real one must win
/// struct outer {
///     long x;                            //  0
///     struct {                           //  8, encoded with kind_flag
///         int c;                         //  8
///         int flags : 3;                 // 12, a bitfield
///         union { int a; long b; };      // 16
///     };
///     int *y;                            // 24
///     int arr[2];                        // 32
///     int obf;                           // 40, old-style bitfield: INT of 5 bits
/// };                                     // 48
/// ```
/// with an enum and a function prototype in between, whose variable-length data the
/// parser must step over.
fn tiny(big_endian: bool) -> Btf {
    let mut b = Blob::new(big_endian);
    b.composite("outer", raw::KIND_STRUCT, false, 0, &[]);
    let int = b.ty("int", raw::KIND_INT, false, 0, 4, &[1 << 24 | 32]);
    let long = b.ty("long", raw::KIND_INT, false, 0, 8, &[1 << 24 | 64]);
    let (red, blue) = (b.name("red"), b.name("blue"));
    b.ty("color", raw::KIND_ENUM, false, 2, 4, &[red, 0, blue, 1]);
    b.ty("", raw::KIND_FUNC_PROTO, false, 2, int, &[0, int, 0, long]);
    let union = b.composite(
        "",
        raw::KIND_UNION,
        false,
        8,
        &[("a", int, 0), ("b", long, 0)],
    );
    let anon = b.composite(
        "",
        raw::KIND_STRUCT,
        true,
        16,
        &[("c", int, 0), ("flags", int, 3 << 24 | 32), ("", union, 64)],
    );
    let ptr = b.ty("", raw::KIND_PTR, false, 0, int, &[]);
    let arr = b.ty("", raw::KIND_ARRAY, false, 0, 0, &[int, int, 2]);
    let small = b.ty("small", raw::KIND_INT, false, 0, 4, &[5]);
    let fields = [
        ("x", long, 0),
        ("", anon, 64),
        ("y", ptr, 192),
        ("arr", arr, 256),
        ("obf", small, 320),
    ];
    b.composite("outer", raw::KIND_STRUCT, false, 48, &fields);
    Btf::from_bytes(&b.bytes()).expect("tiny blob parses")
}

#[test]
fn nested_anonymous_members_add_up() {
    for big_endian in [false, true] {
        let btf = tiny(big_endian);
        let m = |field| {
            btf.member("outer", field)
                .map(|m| (m.offset, m.size))
                .expect(field)
        };
        assert_eq!(m("x"), (0, Some(8)));
        assert_eq!(m("c"), (8, Some(4)));
        assert_eq!(
            m("a"),
            (16, Some(4)),
            "8 (anonymous struct) + 8 (union in it) + 0"
        );
        assert_eq!(m("b"), (16, Some(8)));
        assert_eq!(m("y"), (24, Some(8)));
        assert_eq!(m("arr"), (32, Some(8)));
        assert_eq!(btf.struct_size("outer").expect("size"), 48);
        assert_eq!(btf.type_count(), 11);
    }
}

#[test]
fn errors_name_the_struct_and_field() {
    let btf = tiny(false);
    let err = |s, f| btf.member(s, f).expect_err("must fail").to_string();
    let no_field = "struct `outer` has no field `nope` (anonymous members searched too)";
    assert_eq!(err("outer", "nope"), no_field);
    assert_eq!(err("inner", "x"), "the kernel's BTF has no struct `inner`");
    let bitfield = "is a bitfield: it has no byte offset";
    assert_eq!(err("outer", "flags"), format!("`outer.flags` {bitfield}"));
    assert_eq!(err("outer", "obf"), format!("`outer.obf` {bitfield}"));
    assert!(matches!(
        resolve_offsets(&btf),
        Err(BtfError::NoStruct { .. })
    ));
}

#[test]
fn malformed_blobs_are_refused() {
    let good = {
        let mut b = Blob::new(false);
        b.ty("int", raw::KIND_INT, false, 0, 4, &[32]);
        b.bytes()
    };
    assert!(Btf::from_bytes(&good).is_ok());
    let truncated = [
        &b"\x00\x00"[..],
        &good[..10],
        &good[..good.len() - 1],
        &good[..30],
    ];
    for bad in truncated {
        assert!(matches!(Btf::from_bytes(bad), Err(BtfError::Malformed(_))));
    }
    let mut unknown_kind = good.clone();
    unknown_kind[24 + 7] = 31; // info's kind byte (little endian, bits 24..29)
    let e = Btf::from_bytes(&unknown_kind).err().map(|e| e.to_string());
    assert_eq!(
        e.as_deref(),
        Some("malformed BTF: type id 1 has unknown kind 31")
    );
}

/// The host's BTF file, plus the files named in `COUNTERSIGN_TEST_BTF` (`:`-separated; raw
/// BTF, e.g. the `.BTF` section of the VM kernels: `objcopy -O binary --only-section=.BTF`).
fn btf_files() -> Vec<String> {
    let mut files = Vec::new();
    if Path::new(VMLINUX_BTF).exists() {
        files.push(VMLINUX_BTF.to_owned());
    } else {
        eprintln!("SKIP: {VMLINUX_BTF} missing (kernel without CONFIG_DEBUG_INFO_BTF)");
    }
    let extra = std::env::var("COUNTERSIGN_TEST_BTF").unwrap_or_default();
    files.extend(
        extra
            .split(':')
            .filter(|f| !f.is_empty())
            .map(str::to_owned),
    );
    files
}

#[test]
fn offsets_agree_with_known_layout() {
    for file in btf_files() {
        let btf = Btf::from_file(Path::new(&file)).expect(&file);
        let o = resolve_offsets(&btf).unwrap_or_else(|e| panic!("{file}: {e}"));
        eprintln!("{file}: {o:?}");
        let fields = [
            ("task_struct", o.task_mm),
            ("task_struct", o.task_real_parent),
            ("task_struct", o.task_tgid),
            ("task_struct", o.task_cgroups),
            ("mm_struct", o.mm_exe_file),
            ("mm_struct", o.mm_arg_start),
            ("mm_struct", o.mm_arg_end),
            ("file", o.file_inode),
            ("inode", o.inode_ino),
            ("inode", o.inode_sb),
            ("super_block", o.sb_dev),
            ("linux_binprm", o.bprm_file),
            ("linux_binprm", o.bprm_filename),
            ("linux_binprm", o.bprm_interp),
            ("linux_binprm", o.bprm_argc),
            ("linux_binprm", o.bprm_buf),
            ("inode", o.inode_nlink),
            ("task_struct", o.task_files),
            ("files_struct", o.files_fdt),
            ("fdtable", o.fdtable_fd),
            ("css_set", o.css_set_dfl_cgrp),
            ("cgroup", o.cgroup_level),
            ("cgroup", o.cgroup_kn),
            ("cgroup", o.cgroup_parent),
            ("kernfs_node", o.kernfs_id),
            ("file", o.file_mode),
            ("file", o.file_dentry),
            ("dentry", o.dentry_name),
            ("dentry", o.dentry_parent),
            ("dentry", o.dentry_inode),
            ("super_block", o.sb_magic),
        ];
        for (s, off) in fields {
            let size = btf.struct_size(s).expect(s);
            assert!(
                off > 0 && off < size,
                "{file}: {s}: offset {off} outside 1..{size}"
            );
        }
        // `unsigned long arg_start, arg_end, env_start, env_end;` since Linux 2.6.
        assert_eq!(o.mm_arg_end, o.mm_arg_start + 8, "{file}");
        assert_eq!(
            btf.member("inode", "i_ino").expect("i_ino").size,
            Some(8),
            "{file}"
        );
        let pid = btf.member_offset("task_struct", "pid").expect("pid");
        assert_eq!(pid + 4, o.task_tgid, "{file}: `pid_t pid; pid_t tgid;`");
        // `struct cgroup` starts with its own css (`self`); `parent` is inside it.
        assert_eq!(o.cgroup_self, 0, "{file}");
        let parent = btf
            .member_offset("cgroup_subsys_state", "parent")
            .expect("parent");
        assert_eq!(o.cgroup_parent, parent, "{file}");
        // `struct path { struct vfsmount *mnt; struct dentry *dentry; }` since 2.6.
        assert_eq!((o.path_mnt, o.path_dentry), (0, 8), "{file}");
        let f_path = btf.member_offset("file", "f_path").expect("f_path");
        assert_eq!(o.file_dentry, f_path + 8, "{file}");
        // `struct unix_sock` starts with its `struct sock`, which is far longer than 8 bytes;
        // `struct unix_address { refcount_t refcnt; int len; [unsigned int hash;] name[]; }`.
        assert!(
            o.unix_sock_addr > 100,
            "{file}: unix_sock.addr {}",
            o.unix_sock_addr
        );
        assert_eq!(o.unix_address_len, 4, "{file}");
        assert!(
            [8, 12].contains(&o.unix_address_name),
            "{file}: unix_address.name {}",
            o.unix_address_name
        );
        assert!(
            o.sock_cgroup > 100 && o.sock_cgroup < o.unix_sock_addr,
            "{file}: sock.sk_cgrp_data {}",
            o.sock_cgroup
        );
    }
}

/// Compares every struct and union we decoded with what `bpftool` decodes from the same file.
#[test]
fn structs_match_bpftool() {
    for file in btf_files() {
        let btf = Btf::from_file(Path::new(&file)).expect(&file);
        let out = match std::process::Command::new("bpftool")
            .args(["btf", "dump", "file", &file, "format", "raw"])
            .output()
        {
            Ok(out) if out.status.success() => out.stdout,
            _ => return eprintln!("SKIP: bpftool not available to cross-check the BTF parser"),
        };
        let text = String::from_utf8(out).expect("bpftool prints UTF-8");
        let checked = compare_dump(&btf, &text);
        assert!(
            checked > 1000,
            "{file}: only {checked} structs and unions compared"
        );
        eprintln!("{file}: {checked} structs and unions identical to bpftool's decoding");
    }
}

/// Checks every STRUCT and UNION of a `bpftool btf dump format raw` output against our
/// decoding; returns how many were compared.
fn compare_dump(btf: &Btf, text: &str) -> usize {
    let (mut checked, mut current) = (0, None);
    for line in text.lines() {
        if let Some(member) = line.strip_prefix('\t') {
            if let Some((t, i)) = current.as_mut() {
                assert_eq!(bpftool_member(&btf.raw, t, *i), member, "type {t:?}");
                *i += 1;
            }
            continue;
        }
        current = None;
        let (id, rest) = line
            .trim_start_matches('[')
            .split_once("] ")
            .expect("type line");
        let kind = rest.split(' ').next().expect("kind");
        if kind == "STRUCT" || kind == "UNION" {
            let t = *btf.raw.get(id.parse().expect("id")).expect("id exists");
            let name = match btf.raw.name(t.name_off) {
                "" => "(anon)",
                n => n,
            };
            let ours = format!("{kind} '{name}' size={} vlen={}", t.size_or_type, t.vlen);
            assert_eq!(ours, rest);
            checked += 1;
            current = Some((t, 0));
        }
    }
    checked
}

/// Member `i` of `t` as `bpftool btf dump format raw` prints it.
fn bpftool_member(raw: &Raw, t: &raw::Type, i: u16) -> String {
    let m = raw.member(t, i).expect("member");
    let name = match raw.name(m.name_off) {
        "" => "(anon)",
        n => n,
    };
    let (bits, size) = if t.kind_flag {
        (m.offset & 0xff_ffff, m.offset >> 24)
    } else {
        (m.offset, 0)
    };
    let mut s = format!("'{name}' type_id={} bits_offset={bits}", m.type_id);
    if size != 0 {
        s += &format!(" bitfield_size={size}");
    }
    s
}
