//! The kernel field offsets the programs read, resolved from BTF.

use agent_common::offsets::Offsets;

use super::{Btf, BtfError};

/// Pointer width of the running kernel (ours: BTF does not record it).
const PTR: u32 = 8;

/// Resolves every field of [`Offsets`], checking each field's width against what the
/// programs read: a kernel that changed a field's type must fail here, not read garbage.
pub fn resolve_offsets(btf: &Btf) -> Result<Offsets, BtfError> {
    let field = |struct_name: &str, field: &str, expected: u32| -> Result<u32, BtfError> {
        let member = btf.member(struct_name, field)?;
        match member.size {
            Some(found) if found != expected => Err(BtfError::Size {
                struct_name: struct_name.to_owned(),
                field: field.to_owned(),
                expected,
                found,
            }),
            // A width BTF cannot tell (none of these fields) is no reason to refuse.
            _ => Ok(member.offset),
        }
    };
    // An embedded `struct cgroup_subsys_state`: no scalar width to check.
    let cgroup_self = btf.member_offset("cgroup", "self")?;
    // Pointers inside embedded structures: the outer offset plus the inner field's.
    let nested = |outer: (&str, &str), inner: (&str, &str)| -> Result<u32, BtfError> {
        btf.member_offset(outer.0, outer.1)?
            .checked_add(field(inner.0, inner.1, PTR)?)
            .ok_or_else(|| BtfError::Malformed(format!("{}.{} overflows", outer.0, outer.1)))
    };
    Ok(Offsets {
        task_mm: field("task_struct", "mm", PTR)?,
        task_real_parent: field("task_struct", "real_parent", PTR)?,
        task_tgid: field("task_struct", "tgid", 4)?,
        mm_exe_file: field("mm_struct", "exe_file", PTR)?,
        mm_arg_start: field("mm_struct", "arg_start", 8)?,
        mm_arg_end: field("mm_struct", "arg_end", 8)?,
        file_inode: field("file", "f_inode", PTR)?,
        inode_ino: field("inode", "i_ino", 8)?,
        inode_sb: field("inode", "i_sb", PTR)?,
        sb_dev: field("super_block", "s_dev", 4)?,
        bprm_file: field("linux_binprm", "file", PTR)?,
        bprm_filename: field("linux_binprm", "filename", PTR)?,
        bprm_interp: field("linux_binprm", "interp", PTR)?,
        bprm_argc: field("linux_binprm", "argc", 4)?,
        bprm_buf: field(
            "linux_binprm",
            "buf",
            agent_common::identity::HEAD_LEN as u32,
        )?,
        inode_nlink: field("inode", "__i_nlink", 4)?,
        task_files: field("task_struct", "files", PTR)?,
        files_fdt: field("files_struct", "fdt", PTR)?,
        fdtable_max_fds: field("fdtable", "max_fds", 4)?,
        fdtable_fd: field("fdtable", "fd", PTR)?,
        task_cgroups: field("task_struct", "cgroups", PTR)?,
        css_set_dfl_cgrp: field("css_set", "dfl_cgrp", PTR)?,
        cgroup_level: field("cgroup", "level", 4)?,
        cgroup_kn: field("cgroup", "kn", PTR)?,
        cgroup_parent: cgroup_self
            .checked_add(field("cgroup_subsys_state", "parent", PTR)?)
            .ok_or_else(|| BtfError::Malformed("cgroup.self.parent overflows".into()))?,
        cgroup_self,
        kernfs_id: field("kernfs_node", "id", 8)?,
        mm_start_stack: field("mm_struct", "start_stack", 8)?,
        file_mode: field("file", "f_mode", 4)?,
        file_dentry: nested(("file", "f_path"), ("path", "dentry"))?,
        dentry_name: nested(("dentry", "d_name"), ("qstr", "name"))?,
        dentry_parent: field("dentry", "d_parent", PTR)?,
        dentry_inode: field("dentry", "d_inode", PTR)?,
        sb_magic: field("super_block", "s_magic", 8)?,
        vfsmount_sb: field("vfsmount", "mnt_sb", PTR)?,
        path_mnt: field("path", "mnt", PTR)?,
        path_dentry: field("path", "dentry", PTR)?,
        unix_sock_addr: field("unix_sock", "addr", PTR)?,
        unix_address_len: field("unix_address", "len", 4)?,
        // A flexible array of `struct sockaddr_un`: no scalar width to check.
        unix_address_name: btf.member_offset("unix_address", "name")?,
        // `struct sock_cgroup_data`: a union (5.10) or a struct (5.16+), no scalar width.
        sock_cgroup: btf.member_offset("sock", "sk_cgrp_data")?,
        vma_file: field("vm_area_struct", "vm_file", PTR)?,
    })
}
