//! `cs-probe tamper ATTEMPT ARGS…`: the attempts of an agent (run as root) on the enforcement
//! itself, each with the exact system call, and the ordinary work that must keep working next
//! to them. Prints `ok` or `errno=<n> <NAME>`; exit 0 or 1.
//!
//! | attempt | system calls |
//! |---|---|
//! | `cgroup-move DIR` | `open(DIR/cgroup.procs, O_WRONLY)`, `write(own pid)` |
//! | `clone-into DIR` | `clone3(CLONE_INTO_CGROUP, cgroup = open(DIR))`; the child exits at once |
//! | `mkdir DIR` | `mkdir(DIR)` |
//! | `rmdir DIR` | `rmdir(DIR)` |
//! | `mount FSTYPE DIR` | `mount("none", DIR, FSTYPE, 0, NULL)` |
//! | `umount DIR` | `umount2(DIR, 0)` |
//! | `kill PID SIG` | `kill(PID, SIG)` |
//! | `ptrace PID` | `ptrace(PTRACE_ATTACH, PID)` (then detach) |
//! | `ptrace-seize PID` | `ptrace(PTRACE_SEIZE, PID)` (the tracee is not stopped; then detach) |
//! | `pidfd-open PID` | `pidfd_open(PID, 0)` |
//! | `process-vm-read PID` | `process_vm_readv` of 8 bytes at PID's address 0x1000 |
//! | `unlink PATH` | `unlink(PATH)` |
//! | `rename FROM TO` | `rename(FROM, TO)` |
//! | `bpf-map-create` | `bpf(BPF_MAP_CREATE)` of a one-entry array |
//! | `bpf-obj-get PATH` | `bpf(BPF_OBJ_GET, PATH)` |
//! | `socket FAMILY TYPE PROTOCOL` | `socket(…)` (numbers) |
//! | `init-module` | `init_module` of a 64-byte image that is not a module |
//! | `read PATH` | reads PATH to the end |
//! | `write PATH` | `open(PATH, O_WRONLY \| O_APPEND)`, `write("x")` |
//! | `create PATH` | `open(PATH, O_WRONLY \| O_CREAT \| O_EXCL)` |
//! | `link FROM TO` | `link(FROM, TO)` |
//! | `truncate PATH` | `truncate(PATH, 0)` |
//! | `reboot-cad-off` | `reboot(LINUX_REBOOT_CMD_CAD_OFF)`: needs `CAP_SYS_BOOT`, changes nothing that matters |
//! | `net-admin` | `ioctl(SIOCSIFMTU)` setting `lo`'s MTU to what it is: needs `CAP_NET_ADMIN` |
//! | `map-exec PATH` | `mmap(PATH, PROT_READ)`, then `mprotect(PROT_READ \| PROT_EXEC)`: a loader of one's own |
//! | `unix-serve-self PATH` | binds and listens on PATH, connects to it, removes it: a server the agent started itself |
//! | `unix-connect PATH` | `connect` of a unix stream socket to PATH (`@NAME`: an abstract name) |

use std::{ffi::OsString, fs, io, os::unix::ffi::OsStrExt as _};

use super::{cstring, report, CmdResult, Usage};

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
/// `sizeof(struct clone_args)` with the `cgroup` field (`CLONE_ARGS_SIZE_VER2`).
const CLONE_ARGS_SIZE: usize = 88;
const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_OBJ_GET: libc::c_long = 7;
const BPF_MAP_TYPE_ARRAY: u32 = 2;

pub fn run(args: &[OsString]) -> CmdResult {
    let arg = |i: usize| -> Result<&OsString, Usage> {
        args.get(i)
            .ok_or_else(|| Usage(format!("tamper: argument {i} missing")))
    };
    let num = |i: usize| -> Result<i64, Usage> {
        arg(i)?
            .to_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Usage(format!("tamper: argument {i} is not a number")))
    };
    let attempt = arg(0)?.to_str().unwrap_or_default().to_owned();
    let result = match attempt.as_str() {
        "cgroup-move" => cgroup_move(arg(1)?),
        "clone-into" => clone_into(arg(1)?),
        "mkdir" => fs::create_dir(arg(1)?),
        "rmdir" => fs::remove_dir(arg(1)?),
        "mount" => {
            let (ty, dir) = (cstring(arg(1)?)?, cstring(arg(2)?)?);
            // SAFETY: NUL-terminated strings that outlive the call.
            check(unsafe {
                libc::mount(
                    c"none".as_ptr(),
                    dir.as_ptr(),
                    ty.as_ptr(),
                    0,
                    std::ptr::null(),
                )
            } as i64)
        }
        // SAFETY: as above.
        "umount" => check(unsafe { libc::umount2(cstring(arg(1)?)?.as_ptr(), 0) } as i64),
        // SAFETY: plain integers.
        "kill" => check(unsafe { libc::kill(num(1)? as i32, num(2)? as i32) } as i64),
        "ptrace" => ptrace(num(1)? as i32),
        "ptrace-seize" => ptrace_seize(num(1)? as i32),
        // SAFETY: plain integers; the fd is closed at once.
        "pidfd-open" => check(unsafe {
            let fd = libc::syscall(libc::SYS_pidfd_open, num(1)? as i32, 0);
            if fd >= 0 {
                libc::close(fd as i32);
            }
            fd
        }),
        "process-vm-read" => process_vm_read(num(1)? as i32),
        "unlink" => fs::remove_file(arg(1)?),
        "rename" => fs::rename(arg(1)?, arg(2)?),
        "bpf-map-create" => bpf_map_create(),
        "bpf-obj-get" => bpf_obj_get(arg(1)?),
        // SAFETY: plain integers; the fd is closed at once.
        "socket" => check(unsafe {
            let fd = libc::socket(num(1)? as i32, num(2)? as i32, num(3)? as i32);
            if fd >= 0 {
                libc::close(fd);
            }
            fd
        } as i64),
        "init-module" => init_module(),
        "io-uring-setup" => io_uring_setup(),
        "read" => fs::read(arg(1)?).map(drop),
        "write" => fs::OpenOptions::new()
            .append(true)
            .open(arg(1)?)
            .and_then(|mut f| io::Write::write_all(&mut f, b"x")),
        "create" => fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(arg(1)?)
            .map(drop),
        "link" => fs::hard_link(arg(1)?, arg(2)?),
        // SAFETY: a NUL-terminated path that outlives the call.
        "truncate" => check(unsafe { libc::truncate(cstring(arg(1)?)?.as_ptr(), 0) } as i64),
        // SAFETY: a plain command number.
        "reboot-cad-off" => check(unsafe { libc::reboot(libc::LINUX_REBOOT_CMD_CAD_OFF) } as i64),
        "net-admin" => same_mtu_on_lo(),
        "unix-connect" => unix_connect(arg(1)?),
        "unix-serve-self" => unix_serve_self(arg(1)?),
        "map-exec" => map_exec(arg(1)?),
        other => return Err(Usage(format!("tamper: unknown attempt {other}"))),
    };
    Ok(report(result))
}

/// `io_uring_setup(4, &params)`; the ring's fd is closed at once.
fn io_uring_setup() -> io::Result<()> {
    // `sizeof(struct io_uring_params)`, all zero: no flags.
    let mut params = [0u8; 120];
    // SAFETY: `params` is a writable buffer of the size the kernel reads and writes.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 4u32, params.as_mut_ptr()) };
    if fd >= 0 {
        // SAFETY: the fd the call returned, closed once.
        unsafe { libc::close(fd as i32) };
    }
    check(fd)
}

fn check(ret: i64) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn same_mtu_on_lo() -> io::Result<()> {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&socket);
    // SAFETY: an all-zero ifreq is valid; the name fits with its NUL.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *d = *s as libc::c_char;
    }
    // SAFETY: the ifreq outlives both calls; SIOCGIFMTU fills `ifru_mtu`, which SIOCSIFMTU
    // sets back unchanged.
    unsafe {
        check(libc::ioctl(fd, libc::SIOCGIFMTU, &mut req) as i64)?;
        check(libc::ioctl(fd, libc::SIOCSIFMTU, &mut req) as i64)
    }
}

fn unix_connect(path: &OsString) -> io::Result<()> {
    use std::os::{linux::net::SocketAddrExt as _, unix::net};
    let bytes = path.as_bytes();
    let addr = match bytes.strip_prefix(b"@") {
        Some(name) => net::SocketAddr::from_abstract_name(name)?,
        None => net::SocketAddr::from_pathname(path)?,
    };
    net::UnixStream::connect_addr(&addr).map(drop)
}

fn map_exec(path: &OsString) -> io::Result<()> {
    use std::os::fd::AsRawFd as _;
    let file = fs::File::open(path)?;
    let len = 4096;
    // SAFETY: a fresh private read-only mapping of an open file, unmapped before returning.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            file.as_raw_fd(),
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the mapping made above.
    let r = unsafe { libc::mprotect(p, len, libc::PROT_READ | libc::PROT_EXEC) };
    let e = io::Error::last_os_error();
    // SAFETY: the mapping made above.
    unsafe { libc::munmap(p, len) };
    if r != 0 {
        return Err(e);
    }
    Ok(())
}

fn unix_serve_self(path: &OsString) -> io::Result<()> {
    let _ = fs::remove_file(path);
    let listener = std::os::unix::net::UnixListener::bind(path)?;
    let connected = unix_connect(path);
    drop(listener);
    let _ = fs::remove_file(path);
    connected
}

fn cgroup_move(dir: &OsString) -> io::Result<()> {
    let procs = std::path::Path::new(dir).join("cgroup.procs");
    fs::write(procs, std::process::id().to_string())
}

fn clone_into(dir: &OsString) -> io::Result<()> {
    let cgroup = fs::File::open(dir)?;
    let mut args = [0u64; CLONE_ARGS_SIZE / 8];
    args[0] = CLONE_INTO_CGROUP;
    args[4] = libc::SIGCHLD as u64; // exit_signal
    args[10] = std::os::fd::AsRawFd::as_raw_fd(&cgroup) as u64; // cgroup
                                                                // SAFETY: clone3 without CLONE_VM is a fork: the child only calls _exit.
    let pid = unsafe { libc::syscall(libc::SYS_clone3, args.as_ptr(), CLONE_ARGS_SIZE) };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: the child leaves at once.
        unsafe { libc::_exit(0) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(pid as i32, &mut status, 0) };
    Ok(())
}

fn ptrace(pid: i32) -> io::Result<()> {
    // SAFETY: PTRACE_ATTACH takes no pointers.
    let r = unsafe { libc::ptrace(libc::PTRACE_ATTACH, pid, 0, 0) };
    check(r)?;
    let mut status = 0;
    // SAFETY: waits for the tracee's stop, then lets it go.
    unsafe {
        libc::waitpid(pid, &mut status, libc::__WALL);
        libc::ptrace(libc::PTRACE_DETACH, pid, 0, 0);
    }
    Ok(())
}

fn ptrace_seize(pid: i32) -> io::Result<()> {
    // SAFETY: PTRACE_SEIZE and PTRACE_DETACH take no pointers.
    check(unsafe { libc::ptrace(libc::PTRACE_SEIZE, pid, 0, 0) })?;
    // SAFETY: as above.
    unsafe { libc::ptrace(libc::PTRACE_DETACH, pid, 0, 0) };
    Ok(())
}

fn process_vm_read(pid: i32) -> io::Result<()> {
    let mut buf = [0u8; 8];
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: 0x1000 as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: one local iovec over `buf`; the remote address is only read by the kernel.
    check(unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) } as i64)
}

fn bpf(cmd: libc::c_long, attr: &[u64; 9]) -> io::Result<()> {
    // SAFETY: `attr` is a zero-padded `union bpf_attr` prefix of the size passed.
    let fd = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_ptr(), size_of_val(attr)) };
    check(fd)?;
    // SAFETY: our own new fd.
    unsafe { libc::close(fd as i32) };
    Ok(())
}

fn bpf_map_create() -> io::Result<()> {
    let mut attr = [0u64; 9];
    // map_type, key_size; value_size, max_entries.
    attr[0] = u64::from(BPF_MAP_TYPE_ARRAY) | (4u64 << 32);
    attr[1] = 4 | (1u64 << 32);
    bpf(BPF_MAP_CREATE, &attr)
}

fn bpf_obj_get(path: &OsString) -> io::Result<()> {
    let mut bytes = path.as_bytes().to_vec();
    bytes.push(0);
    let mut attr = [0u64; 9];
    attr[0] = bytes.as_ptr() as u64; // pathname
    bpf(BPF_OBJ_GET, &attr)
}

fn init_module() -> io::Result<()> {
    let image = [0u8; 64];
    // SAFETY: a readable buffer of the length passed and a NUL-terminated parameter string.
    check(unsafe {
        libc::syscall(
            libc::SYS_init_module,
            image.as_ptr(),
            image.len(),
            c"".as_ptr(),
        )
    })
}
