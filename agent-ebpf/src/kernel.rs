//! Reads of kernel structures at offsets the daemon resolved from the running kernel's BTF.

use agent_common::offsets::Offsets;
use aya_ebpf::helpers::{bpf_get_current_task, bpf_probe_read_kernel, bpf_probe_read_kernel_buf};

use crate::Error;

/// Filled by the daemon at load time (`EbpfLoader::set_global`); read-only for the programs.
#[unsafe(no_mangle)]
// SAFETY: all-zero is a valid Offsets (plain integers).
static OFFSETS: Offsets = unsafe { core::mem::zeroed() };

/// One field of [`OFFSETS`]; the volatile read keeps the compiler from folding the zeros in.
macro_rules! off {
    ($field:ident) => {
        // SAFETY: reading a plain global.
        unsafe { core::ptr::read_volatile(&OFFSETS.$field) as usize }
    };
}

#[inline(always)]
fn read<T>(base: usize, offset: usize) -> Result<T, Error> {
    if base == 0 {
        return Err(Error::NullPointer);
    }
    // SAFETY: bpf_probe_read_kernel validates the address.
    unsafe { bpf_probe_read_kernel((base + offset) as *const T) }.map_err(|_| Error::KernelRead)
}

/// A file's identity as the kernel sees it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    /// `super_block.s_dev` (kernel `dev_t`: `major << 20 | minor`).
    pub dev: u64,
    pub ino: u64,
}

/// Identity of the file behind a `struct file *`.
#[inline(always)]
pub fn file_id(file: usize) -> Result<FileId, Error> {
    inode_id(read(file, off!(file_inode))?)
}

/// Identity of an inode.
#[inline(always)]
pub fn inode_id(inode: usize) -> Result<FileId, Error> {
    let ino: u64 = read(inode, off!(inode_ino))?;
    let sb: usize = read(inode, off!(inode_sb))?;
    let dev: u32 = read(sb, off!(sb_dev))?;
    Ok(FileId {
        dev: dev as u64,
        ino,
    })
}

/// `current` as a plain address.
#[inline(always)]
pub fn current_task() -> usize {
    // SAFETY: helper without preconditions.
    unsafe { bpf_get_current_task() as usize }
}

/// The parent process of `task`: its tgid and the identity of the binary it runs (None for a
/// parent without an mm, e.g. a kernel thread).
#[inline(always)]
pub fn parent_of(task: usize) -> Result<(u32, Option<FileId>), Error> {
    let parent: usize = read(task, off!(task_real_parent))?;
    let ppid: u32 = read(parent, off!(task_tgid))?;
    Ok((ppid, exe_id(parent)?))
}

/// The identity of the binary `task` runs (None without an mm, e.g. a kernel thread).
#[inline(always)]
pub fn exe_id(task: usize) -> Result<Option<FileId>, Error> {
    let mm: usize = read(task, off!(task_mm))?;
    if mm == 0 {
        return Ok(None);
    }
    let exe: usize = read(mm, off!(mm_exe_file))?;
    if exe == 0 {
        return Ok(None);
    }
    Ok(Some(file_id(exe)?))
}

/// `vma->vm_file` (0 for anonymous memory).
#[inline(always)]
pub fn vma_file(vma: usize) -> Result<usize, Error> {
    read(vma, off!(vma_file))
}

/// Address of the new image's argv array: `mm->start_stack` holds argc, then the pointers.
#[inline(always)]
pub fn image_argv(task: usize) -> Result<u64, Error> {
    let mm: usize = read(task, off!(task_mm))?;
    let stack: u64 = read(mm, off!(mm_start_stack))?;
    Ok(stack + 8)
}

/// The fields of a `struct linux_binprm` the programs use.
pub struct Bprm {
    pub file: FileId,
    /// `bprm->interp`: the path of the file judged at this level (the interpreter for `#!`).
    pub interp: usize,
    /// The caller named another file (a script): this level runs its interpreter.
    pub interpreted: bool,
    pub argc: u32,
    /// The `struct linux_binprm *` itself (its `buf` holds the file's head).
    pub ptr: usize,
    /// The file's link count (0: a memfd, an `O_TMPFILE` or an unlinked file).
    pub links: u32,
}

#[inline(always)]
pub fn bprm(bprm: usize) -> Result<Bprm, Error> {
    let file: usize = read(bprm, off!(bprm_file))?;
    let filename: usize = read(bprm, off!(bprm_filename))?;
    let interp: usize = read(bprm, off!(bprm_interp))?;
    let argc: i32 = read(bprm, off!(bprm_argc))?;
    let inode: usize = read(file, off!(file_inode))?;
    Ok(Bprm {
        file: inode_id(inode)?,
        interp,
        interpreted: interp != filename,
        argc: argc as u32,
        ptr: bprm,
        links: read(inode, off!(inode_nlink))?,
    })
}

/// The link count of the file behind a `struct file *` (0: a memfd, an `O_TMPFILE`).
#[inline(always)]
pub fn file_links(file: usize) -> Result<u32, Error> {
    read(read::<usize>(file, off!(file_inode))?, off!(inode_nlink))
}

/// `bprm->buf`: the first bytes of the file being executed, as the kernel read them.
#[inline(always)]
pub fn bprm_head(
    bprm: usize,
    dst: &mut [u8; agent_common::identity::HEAD_LEN],
) -> Result<(), Error> {
    if bprm == 0 {
        return Err(Error::NullPointer);
    }
    let src = (bprm + off!(bprm_buf)) as *const u8;
    // SAFETY: the helper validates the kernel address.
    unsafe { bpf_probe_read_kernel_buf(src, dst) }.map_err(|_| Error::KernelRead)
}

/// The `struct file *` behind descriptor `fd` of `task` (`task->files->fdt->fd[fd]`).
#[inline(always)]
pub fn fd_file(task: usize, fd: u64) -> Result<usize, Error> {
    let files: usize = read(task, off!(task_files))?;
    let fdt: usize = read(files, off!(files_fdt))?;
    let max: u32 = read(fdt, off!(fdtable_max_fds))?;
    if fd >= max as u64 {
        return Err(Error::KernelRead);
    }
    let fds: usize = read(fdt, off!(fdtable_fd))?;
    read(fds, fd as usize * 8)
}

/// The current task's cgroup v2, for walking up to its ancestors. (The
/// `bpf_get_current_ancestor_cgroup_id` helper only reached tracing programs in 5.14, so exec
/// programs walk the hierarchy themselves; connect programs use the helper.)
#[derive(Clone, Copy)]
pub struct CgroupCursor {
    cgroup: usize,
    pub level: u32,
}

impl CgroupCursor {
    #[inline(always)]
    pub fn current() -> Result<Self, Error> {
        let css_set: usize = read(current_task(), off!(task_cgroups))?;
        let cgroup: usize = read(css_set, off!(css_set_dfl_cgrp))?;
        let level: i32 = read(cgroup, off!(cgroup_level))?;
        Ok(Self {
            cgroup,
            level: level as u32,
        })
    }

    /// The cgroup's id (its kernfs node id).
    #[inline(always)]
    pub fn id(&self) -> Result<u64, Error> {
        let kn: usize = read(self.cgroup, off!(cgroup_kn))?;
        read(kn, off!(kernfs_id))
    }

    /// Moves to the parent cgroup.
    #[inline(always)]
    pub fn up(&mut self) -> Result<(), Error> {
        let parent_css: usize = read(self.cgroup, off!(cgroup_parent))?;
        self.cgroup = parent_css.wrapping_sub(off!(cgroup_self));
        self.level = self.level.wrapping_sub(1);
        Ok(())
    }
}

/// `file->f_mode` (`FMODE_*`).
#[inline(always)]
pub fn file_mode(file: usize) -> Result<u32, Error> {
    read(file, off!(file_mode))
}

/// `file->f_path.dentry`.
#[inline(always)]
pub fn file_dentry(file: usize) -> Result<usize, Error> {
    read(file, off!(file_dentry))
}

/// The magic of the file system `inode` lives on.
#[inline(always)]
pub fn inode_magic(inode: usize) -> Result<u64, Error> {
    sb_magic(read(inode, off!(inode_sb))?)
}

/// The magic of the file system behind a `struct file *`.
#[inline(always)]
pub fn file_magic(file: usize) -> Result<u64, Error> {
    inode_magic(read(file, off!(file_inode))?)
}

/// `sb->s_magic`.
#[inline(always)]
pub fn sb_magic(sb: usize) -> Result<u64, Error> {
    read(sb, off!(sb_magic))
}

/// The magic of the file system a `struct vfsmount *` mounts.
#[inline(always)]
pub fn mount_magic(mnt: usize) -> Result<u64, Error> {
    sb_magic(read(mnt, off!(vfsmount_sb))?)
}

/// The magic of the file system a `struct path *` is on.
#[inline(always)]
pub fn path_magic(path: usize) -> Result<u64, Error> {
    mount_magic(read(path, off!(path_mnt))?)
}

/// `dentry->d_name.name`: a kernel string.
#[inline(always)]
pub fn dentry_name(dentry: usize) -> Result<usize, Error> {
    read(dentry, off!(dentry_name))
}

/// Inode number of `dentry`'s parent directory (for a cgroup file: the cgroup's id).
#[inline(always)]
pub fn parent_ino(dentry: usize) -> Result<u64, Error> {
    read(parent_inode(dentry)?, off!(inode_ino))
}

/// Inode number of the file `dentry` names (0 for a negative dentry).
#[inline(always)]
pub fn dentry_ino(dentry: usize) -> Result<u64, Error> {
    let inode = dentry_inode(dentry)?;
    if inode == 0 {
        return Ok(0);
    }
    read(inode, off!(inode_ino))
}

/// `dentry->d_inode` (0 for a negative dentry: a name that does not exist yet).
#[inline(always)]
pub fn dentry_inode(dentry: usize) -> Result<usize, Error> {
    read(dentry, off!(dentry_inode))
}

/// `dentry->d_parent` (the dentry itself at the root of its file system).
#[inline(always)]
pub fn dentry_parent(dentry: usize) -> Result<usize, Error> {
    read(dentry, off!(dentry_parent))
}

/// The inode of `dentry`'s parent directory.
#[inline(always)]
pub fn parent_inode(dentry: usize) -> Result<usize, Error> {
    dentry_inode(read(dentry, off!(dentry_parent))?)
}

/// `path->dentry`.
#[inline(always)]
pub fn path_dentry(path: usize) -> Result<usize, Error> {
    read(path, off!(path_dentry))
}

/// `task->tgid`.
#[inline(always)]
pub fn task_tgid(task: usize) -> Result<u32, Error> {
    read(task, off!(task_tgid))
}

/// The id of the cgroup v2 the socket `sk` was created in; None when the kernel does not say
/// (5.10-5.15 with the net_cls or net_prio v1 controller in use tag the word instead).
#[inline(always)]
pub fn sock_cgroup_id(sk: usize) -> Result<Option<u64>, Error> {
    let word: u64 = read(sk, off!(sock_cgroup))?;
    if word == 0 || word & 3 != 0 {
        return Ok(None);
    }
    let kn: usize = read(word as usize, off!(cgroup_kn))?;
    Ok(Some(read(kn, off!(kernfs_id))?))
}

/// The name a unix socket is bound to: the address of its `sun_path` and how many bytes of it
/// the address holds (a path name ends at its NUL; an abstract name starts with one). None for
/// a socket bound to nothing.
#[inline(always)]
pub fn unix_bound_name(sock: usize) -> Result<Option<(usize, usize)>, Error> {
    let addr: usize = read(sock, off!(unix_sock_addr))?;
    if addr == 0 {
        return Ok(None);
    }
    let len: i32 = read(addr, off!(unix_address_len))?;
    // `struct sockaddr_un { sa_family_t sun_family; char sun_path[108]; }`
    let family_len = core::mem::size_of::<u16>() as i32;
    let path = addr + off!(unix_address_name) + family_len as usize;
    Ok(Some((path, len.saturating_sub(family_len).max(0) as usize)))
}
