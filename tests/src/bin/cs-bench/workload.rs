//! The timed loops. Each runs in a process of its own, started by the suite inside the cgroup
//! under test, and prints one line, `ns_per_op=N`: wall-clock nanoseconds per operation.

use std::{
    ffi::CString,
    io::{self, Write as _},
    net::{IpAddr, SocketAddr, TcpListener, TcpStream},
    os::fd::AsRawFd as _,
    path::Path,
    ptr, thread,
    time::{Duration, Instant},
};

use tests::bench::Failure;

use crate::parse_num;

/// Prefix of the one result line of a workload.
pub const RESULT_PREFIX: &str = "ns_per_op=";

/// Program `exec-loop` runs when no PATH is given.
const DEFAULT_EXEC_PATH: &str = "/bin/true";

/// Listen backlog of the connect-loop listener: the accept thread may fall behind for a
/// moment, and a full accept queue drops SYNs (a one-second retransmit would wreck a round).
const BACKLOG: i32 = 4096;

/// `exec-loop N [PATH [ARG…]]`.
pub fn exec_cmd(args: &[String]) -> Result<(), Failure> {
    let n: u64 = parse_num("exec-loop N", args.first())?;
    let argv: Vec<&str> = match args.get(1..) {
        Some(rest) if !rest.is_empty() => rest.iter().map(String::as_str).collect(),
        _ => vec![DEFAULT_EXEC_PATH],
    };
    let command = Command::new(&argv).map_err(Failure::Usage)?;
    let start = Instant::now();
    for i in 0..n.max(1) {
        command.run(i)?;
    }
    println!("{RESULT_PREFIX}{}", per_op(start, n.max(1)));
    Ok(())
}

/// `exec-written N SIZE first|repeat`: executes a copy of `/bin/true` padded with zeros to
/// SIZE bytes that this process wrote itself (so, in a watched cgroup, a file the kernel
/// side marks as agent-written). `first`: N fresh copies, each executed once; `repeat`: one
/// copy, executed once untimed, then N times. Only the execs are timed, not the writing.
pub fn written_cmd(args: &[String]) -> Result<(), Failure> {
    let n: u64 = parse_num("exec-written N", args.first())?;
    let size: u64 = parse_num("exec-written SIZE", args.get(1))?;
    let fresh = match args.get(2).map(String::as_str) {
        Some("first") => true,
        Some("repeat") => false,
        _ => return Err(Failure::Usage("exec-written N SIZE first|repeat".into())),
    };
    // In memory where possible: writing 50 MB copies to a disk would slow every round down.
    let shm = Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("cs-bench-written-{}", std::process::id()));
    let result = written_loop(n.max(1), size, fresh, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    println!("{RESULT_PREFIX}{}", result.map_err(Failure::Run)?);
    Ok(())
}

fn written_loop(n: u64, size: u64, fresh: bool, dir: &Path) -> Result<u64, String> {
    let image = padded_image(size)?;
    let mut timed = Duration::ZERO;
    let mut program = None;
    for i in 0..n {
        if fresh || program.is_none() {
            let path = write_program(dir, i, &image)?;
            let command = Command::new(&[&path])?;
            if !fresh {
                command.run(i)?;
            }
            program = Some(command);
        }
        let command = program.as_ref().ok_or("no program")?;
        let start = Instant::now();
        command.run(i)?;
        timed += start.elapsed();
    }
    Ok(u64::try_from(timed.as_nanos() / u128::from(n)).unwrap_or(u64::MAX))
}

/// The bytes of `/bin/true` followed by zeros up to `size` (an ELF runs with bytes appended).
fn padded_image(size: u64) -> Result<Vec<u8>, String> {
    let mut image = std::fs::read(DEFAULT_EXEC_PATH)
        .map_err(|e| format!("reading {DEFAULT_EXEC_PATH}: {e}"))?;
    let size = usize::try_from(size).map_err(|_| format!("size {size} too large"))?;
    image.resize(image.len().max(size), 0);
    Ok(image)
}

/// Writes `image` as `DIR/I/true` (busybox picks its applet by that name), mode 0755.
fn write_program(dir: &Path, i: u64, image: &[u8]) -> Result<String, String> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let sub = dir.join(i.to_string());
    std::fs::create_dir_all(&sub).map_err(|e| format!("creating {}: {e}", sub.display()))?;
    let path = sub.join("true");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o755)
        .open(&path)
        .map_err(|e| format!("creating {}: {e}", path.display()))?;
    file.write_all(image)
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(path.to_string_lossy().into_owned())
}

/// `connect-loop N ADDR PORT`.
pub fn connect_cmd(args: &[String]) -> Result<(), Failure> {
    let n: u64 = parse_num("connect-loop N", args.first())?;
    let addr: IpAddr = parse_num("connect-loop ADDR", args.get(1))?;
    let port: u16 = parse_num("connect-loop PORT", args.get(2))?;
    let target = if port == 0 {
        start_listener(addr)?
    } else {
        SocketAddr::new(addr, port)
    };
    let ns = connect_loop(n.max(1), target)?;
    println!("{RESULT_PREFIX}{ns}");
    Ok(())
}

/// `file-loop N`.
pub fn file_cmd(args: &[String]) -> Result<(), Failure> {
    let n: u64 = parse_num("file-loop N", args.first())?;
    let dir = std::env::temp_dir().join(format!("cs-bench-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .map_err(|e| Failure::Run(format!("creating {}: {e}", dir.display())))?;
    let result = file_loop(n.max(1), &dir);
    let _ = std::fs::remove_dir_all(&dir);
    println!("{RESULT_PREFIX}{}", result.map_err(Failure::Run)?);
    Ok(())
}

/// The file system calls of a build, `n` times in `dir`: create and write a file, open it
/// again for reading and writing, `stat`, rename, `truncate`, unlink (the LSM guards' hooks:
/// `file_open`, `inode_create`, `inode_rename`, `path_truncate`, `inode_unlink`).
fn file_loop(n: u64, dir: &std::path::Path) -> Result<u64, String> {
    use std::fs;
    let (a, b) = (dir.join("a.o"), dir.join("b.o"));
    let start = Instant::now();
    for i in 0..n {
        let step = |what: &str, e: io::Error| format!("file-loop #{i}: {what}: {e}");
        fs::write(&a, b"0123456789abcdef").map_err(|e| step("write", e))?;
        fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&a)
            .map_err(|e| step("open", e))?;
        fs::metadata(&a).map_err(|e| step("stat", e))?;
        fs::rename(&a, &b).map_err(|e| step("rename", e))?;
        fs::OpenOptions::new()
            .write(true)
            .open(&b)
            .and_then(|f| f.set_len(0))
            .map_err(|e| step("truncate", e))?;
        fs::remove_file(&b).map_err(|e| step("unlink", e))?;
    }
    Ok(per_op(start, n))
}

/// A program and its arguments, ready to be executed by a forked child.
struct Command {
    args: Vec<CString>,
}

impl Command {
    fn new(argv: &[&str]) -> Result<Self, String> {
        let args = argv
            .iter()
            .map(|a| CString::new(*a).map_err(|_| format!("NUL byte in {a:?}")))
            .collect::<Result<_, _>>()?;
        Ok(Self { args })
    }

    /// Forks, execs the program with an empty environment and waits: it must exit 0.
    fn run(&self, i: u64) -> Result<(), String> {
        let mut argv: Vec<*const libc::c_char> = self.args.iter().map(|a| a.as_ptr()).collect();
        argv.push(ptr::null());
        let envp: [*const libc::c_char; 1] = [ptr::null()];
        // SAFETY: this process has a single thread, and the child only calls execve and
        // _exit (async-signal-safe) with pointers prepared before the fork.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: see above; argv and envp are NULL-terminated arrays of C strings.
            unsafe {
                libc::execve(argv[0], argv.as_ptr(), envp.as_ptr());
                libc::_exit(127);
            }
        }
        if pid < 0 {
            return Err(format!("fork #{i}: {}", io::Error::last_os_error()));
        }
        let status = wait(pid)?;
        if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
            return Err(format!(
                "exec #{i} of {:?}: the child ended with wait status {status:#x} \
                 (killed or exec failed: is a rule matching it?)",
                self.args[0]
            ));
        }
        Ok(())
    }
}

/// Waits for child `pid` and returns its wait status.
fn wait(pid: libc::pid_t) -> Result<i32, String> {
    let mut status = 0;
    loop {
        // SAFETY: plain waitpid on our own child with a valid status pointer.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc == pid {
            return Ok(status);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(format!("waitpid({pid}): {err}"));
        }
    }
}

/// Connects to `target` `n` times. Each socket is closed with an RST (linger 0) so that no
/// TIME_WAIT sockets pile up: thousands of them would make port selection, and with it every
/// later round, slower (a drift the rounds would then measure).
fn connect_loop(n: u64, target: SocketAddr) -> Result<u64, String> {
    let start = Instant::now();
    for i in 0..n {
        let stream =
            TcpStream::connect(target).map_err(|e| format!("connect #{i} to {target}: {e}"))?;
        reset_on_close(&stream).map_err(|e| format!("SO_LINGER: {e}"))?;
        drop(stream);
    }
    Ok(per_op(start, n))
}

fn reset_on_close(stream: &TcpStream) -> io::Result<()> {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket fd and a pointer to a correctly sized linger struct.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            ptr::from_ref(&linger).cast(),
            size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Binds `addr`:0, accepts (and drops) connections on a detached thread for the life of
/// the process, and returns the bound address.
fn start_listener(addr: IpAddr) -> Result<SocketAddr, String> {
    let listener = TcpListener::bind((addr, 0)).map_err(|e| format!("listening on {addr}: {e}"))?;
    // SAFETY: listen(2) again on a listening socket only changes its backlog.
    if unsafe { libc::listen(listener.as_raw_fd(), BACKLOG) } != 0 {
        return Err(format!("listen: {}", io::Error::last_os_error()));
    }
    let local = listener
        .local_addr()
        .map_err(|e| format!("listener address: {e}"))?;
    thread::spawn(move || {
        // Errors (a connection reset before it was accepted) are part of the game.
        for conn in listener.incoming() {
            drop(conn);
        }
    });
    Ok(local)
}

fn per_op(start: Instant, n: u64) -> u64 {
    let total = start.elapsed().as_nanos() / u128::from(n);
    u64::try_from(total).unwrap_or(u64::MAX)
}
