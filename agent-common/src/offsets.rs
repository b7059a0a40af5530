//! Offsets of the kernel structure fields the programs read, resolved by the daemon from the
//! running kernel's BTF (`/sys/kernel/btf/vmlinux`) and handed to the programs as a read-only
//! global at load time. Rust eBPF has no CO-RE relocations; this keeps one build portable from
//! 5.10 to 6.18.

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Offsets {
    /// `task_struct.mm`
    pub task_mm: u32,
    /// `task_struct.real_parent`
    pub task_real_parent: u32,
    /// `task_struct.tgid`
    pub task_tgid: u32,
    /// `mm_struct.exe_file`
    pub mm_exe_file: u32,
    /// `mm_struct.arg_start`
    pub mm_arg_start: u32,
    /// `mm_struct.arg_end`
    pub mm_arg_end: u32,
    /// `mm_struct.start_stack` (argc, then the argv pointers of the new image)
    pub mm_start_stack: u32,
    /// `file.f_inode`
    pub file_inode: u32,
    /// `inode.i_ino`
    pub inode_ino: u32,
    /// `inode.i_sb`
    pub inode_sb: u32,
    /// `super_block.s_dev`
    pub sb_dev: u32,
    /// `linux_binprm.file`
    pub bprm_file: u32,
    /// `linux_binprm.filename`
    pub bprm_filename: u32,
    /// `linux_binprm.interp`
    pub bprm_interp: u32,
    /// `linux_binprm.argc`
    pub bprm_argc: u32,
    /// `linux_binprm.buf` (the file's first `BINPRM_BUF_SIZE` bytes)
    pub bprm_buf: u32,
    /// `inode.__i_nlink` (0: a memfd, an `O_TMPFILE` or an unlinked file)
    pub inode_nlink: u32,
    /// `task_struct.files`
    pub task_files: u32,
    /// `files_struct.fdt`
    pub files_fdt: u32,
    /// `fdtable.max_fds`
    pub fdtable_max_fds: u32,
    /// `fdtable.fd`
    pub fdtable_fd: u32,
    /// `task_struct.cgroups` (the task's `css_set`)
    pub task_cgroups: u32,
    /// `css_set.dfl_cgrp` (the task's cgroup v2)
    pub css_set_dfl_cgrp: u32,
    /// `cgroup.level`
    pub cgroup_level: u32,
    /// `cgroup.kn`
    pub cgroup_kn: u32,
    /// offset of `cgroup.self.parent`: `cgroup.self` + `cgroup_subsys_state.parent` (the
    /// parent's `self` css, which is the parent cgroup minus the offset of `self`)
    pub cgroup_parent: u32,
    /// `cgroup.self` (to go from a parent css back to its cgroup)
    pub cgroup_self: u32,
    /// `kernfs_node.id` (the cgroup id, as `bpf_get_current_cgroup_id` returns it)
    pub kernfs_id: u32,
    /// `file.f_mode`
    pub file_mode: u32,
    /// `file.f_path.dentry`: `file.f_path` + `path.dentry`
    pub file_dentry: u32,
    /// `dentry.d_name.name`: `dentry.d_name` + `qstr.name`
    pub dentry_name: u32,
    /// `dentry.d_parent`
    pub dentry_parent: u32,
    /// `dentry.d_inode`
    pub dentry_inode: u32,
    /// `super_block.s_magic`
    pub sb_magic: u32,
    /// `vfsmount.mnt_sb`
    pub vfsmount_sb: u32,
    /// `path.mnt`
    pub path_mnt: u32,
    /// `path.dentry`
    pub path_dentry: u32,
    /// `unix_sock.addr` (a `struct unix_sock` starts with its `struct sock`)
    pub unix_sock_addr: u32,
    /// `unix_address.len` (the bound address's length, `sun_family` included)
    pub unix_address_len: u32,
    /// `unix_address.name` (the `struct sockaddr_un` the socket was bound to)
    pub unix_address_name: u32,
    /// `sock.sk_cgrp_data`, whose first word is the cgroup v2 the socket was created in
    /// (5.10-5.15: a tagged word, a pointer only when its two low bits are clear)
    pub sock_cgroup: u32,
    /// `vm_area_struct.vm_file`
    pub vma_file: u32,
}
