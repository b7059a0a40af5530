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
}
