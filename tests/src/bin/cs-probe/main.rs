//! `cs-probe`: the program the enforcement tests run inside agent cgroups.
//!
//! It only needs std and libc, so it runs in the VM's busybox userland, and it performs each
//! operation with the exact system call a test wants to observe (no shell in between).
//!
//! Every subcommand prints one result line on stdout, `ok` or `errno=<n> <NAME>`, and exits:
//!
//! | exit | meaning |
//! |------|---------|
//! | 0    | success (`ok`), or the program ran as a harmless target (see below) |
//! | 1    | a network operation failed; the errno is printed |
//! | 2    | usage error (message on stderr) |
//! | 125  | the exec failed with an errno other than those below |
//! | 126  | the exec failed with EPERM or EACCES (what a shell reports for a refused exec) |
//! | 127  | the exec failed with ENOENT |
//!
//! An exec refused by killing (fallback mode, argv mismatch) prints nothing: the parent sees
//! SIGKILL. A successful exec prints nothing either: the new image does the talking.
//!
//! Subcommands:
//! - `exec [--argv0 X] [--wait-fifo FIFO] PATH [ARGS…]` — `execve(PATH, [X or PATH, ARGS…])`.
//!   With `--wait-fifo` it prints `waiting` and blocks opening FIFO for reading first, so that
//!   a test can release several processes at the same instant by opening FIFO for writing.
//!   With `--hold-writable` it opens PATH for writing first and keeps it open through the
//!   exec: a session that would rewrite the file while (or after) the kernel judged it.
//! - `execveat-fd [--argv0 X] PATH [ARGS…]` — `open(PATH, O_RDONLY)` then
//!   `execveat(fd, "", argv, envp, AT_EMPTY_PATH)`.
//! - `memfd-exec [--argv0 X] PATH [ARGS…]` — copies PATH into a new `memfd_create` file and
//!   execs that (`execveat(memfd, "", …, AT_EMPTY_PATH)`, what `fexecve` does): a fileless
//!   image of PATH.
//! - `argv-race PATH SAFE EVIL ARGS…` — execs PATH with ARGS, where the one argument `@` is
//!   a buffer that another thread keeps flipping between SAFE and EVIL (1 to 7 bytes each) while
//!   the exec is in progress. One attempt per invocation: the exec replaces the process.
//! - `echo-args FILE ARGS…` — appends `ARGS…` as one line to FILE, prints `ok`.
//! - `connect tcp|udp ADDR PORT` — connects (UDP: connects, then sends one datagram).
//! - `sendto udp ADDR PORT` — one datagram from an unconnected UDP socket (`sendmsg` hooks).
//! - `connect-flood ADDR PORT N` — N `connect` calls of one UDP socket to ADDR:PORT as fast as
//!   possible; prints `refused=<EPERM count> other=<other outcomes>`, exits 0.
//! - `sleep SECS` — sleeps, prints `ok`.
//! - `run-many N PATH [ARGS…]` — runs PATH N times, one after the other (`std::process`),
//!   silently; prints `ok` when every run exited 0, else `failed=K of N, first: STATUS` (exit 1).
//! - `write-many N DIR` — creates N empty files in DIR (each opened for writing once), prints
//!   `ok`: a session that writes many files, as a build does (or an agent ageing marks out).
//! - `listen ADDR` — a TCP listener on ADDR (any port); prints `port=<n>` and waits to be killed.
//! - `tamper ATTEMPT ARGS…` — one attempt on the enforcement itself, or a piece of an agent's
//!   ordinary work next to it (see `tamper.rs`); prints `ok` or the errno.
//!
//! Any other first argument (or none) makes cs-probe a harmless *target*: it appends its whole
//! argv as one line to `$CS_PROBE_LOG` (when set), prints `ran ARGS…` and exits 0. Copies of
//! cs-probe are the "guarded binaries" of the tests, and a `#!` script whose interpreter is
//! such a copy lands here too, with the script path as first argument.

use std::{
    ffi::{CString, OsString},
    fs::OpenOptions,
    io::{self, Write as _},
    net::{IpAddr, SocketAddr, TcpStream, UdpSocket},
    os::unix::ffi::{OsStrExt as _, OsStringExt as _},
    ptr,
    sync::atomic::{AtomicU64, Ordering},
    thread,
    time::Duration,
};

mod tamper;

const EXIT_OK: i32 = 0;
const EXIT_ERRNO: i32 = 1;
const EXIT_USAGE: i32 = 2;
const EXIT_EXEC_OTHER: i32 = 125;
const EXIT_EXEC_DENIED: i32 = 126;
const EXIT_EXEC_NOT_FOUND: i32 = 127;

/// Environment variable naming the file where target runs append their argv.
const LOG_ENV: &str = "CS_PROBE_LOG";
/// Placeholder in `argv-race` ARGS for the flipping argument.
const RACE_PLACEHOLDER: &str = "@";

/// A usage error: printed on stderr, exit 2.
struct Usage(String);

type CmdResult = Result<i32, Usage>;

fn main() {
    let args: Vec<OsString> = std::env::args_os().collect();
    let rest = args.get(2..).unwrap_or_default();
    let result = match args.get(1).and_then(|a| a.to_str()) {
        Some("exec") => cmd_exec(rest),
        Some("execveat-fd") => cmd_execveat_fd(rest),
        Some("memfd-exec") => cmd_memfd_exec(rest),
        Some("argv-race") => cmd_argv_race(rest),
        Some("echo-args") => cmd_echo_args(rest),
        Some("connect") => cmd_connect(rest),
        Some("sendto") => cmd_sendto(rest),
        Some("connect-flood") => cmd_connect_flood(rest),
        Some("sleep") => cmd_sleep(rest),
        Some("run-many") => cmd_run_many(rest),
        Some("write-many") => cmd_write_many(rest),
        Some("listen") => cmd_listen(rest),
        Some("tamper") => tamper::run(rest),
        _ => Ok(target(&args)),
    };
    let code = result.unwrap_or_else(|Usage(msg)| {
        eprintln!("cs-probe: {msg}");
        EXIT_USAGE
    });
    // Best effort: the result line is already line-buffered out; nothing else to flush.
    let _ = io::stdout().flush();
    std::process::exit(code);
}

/// The harmless target program: records that it ran and with which arguments.
fn target(args: &[OsString]) -> i32 {
    if let Some(log) = std::env::var_os(LOG_ENV) {
        if let Err(e) = append_line(log.as_ref(), args) {
            eprintln!("cs-probe: cannot append to ${LOG_ENV}: {e}");
        }
    }
    println!("ran {}", join(args.get(1..).unwrap_or_default()));
    EXIT_OK
}

/// What to exec and how, parsed from `[--argv0 X] [--wait-fifo F] PATH [ARGS…]`.
struct ExecSpec {
    path: CString,
    argv: Vec<CString>,
    wait_fifo: Option<CString>,
    hold_writable: bool,
}

fn parse_exec(args: &[OsString]) -> Result<ExecSpec, Usage> {
    let mut argv0 = None;
    let mut wait_fifo = None;
    let mut hold_writable = false;
    let mut i = 0;
    while let Some(flag) = args.get(i).and_then(|a| a.to_str()) {
        if flag == "--hold-writable" {
            hold_writable = true;
            i += 1;
            continue;
        }
        let slot = match flag {
            "--argv0" => &mut argv0,
            "--wait-fifo" => &mut wait_fifo,
            _ => break,
        };
        let value = args
            .get(i + 1)
            .ok_or_else(|| Usage(format!("{flag} needs a value")))?;
        *slot = Some(cstring(value)?);
        i += 2;
    }
    let path = cstring(
        args.get(i)
            .ok_or_else(|| Usage("exec: PATH missing".into()))?,
    )?;
    let mut argv = vec![argv0.unwrap_or_else(|| path.clone())];
    for a in &args[i + 1..] {
        argv.push(cstring(a)?);
    }
    Ok(ExecSpec {
        path,
        argv,
        wait_fifo,
        hold_writable,
    })
}

fn cmd_exec(args: &[OsString]) -> CmdResult {
    let spec = parse_exec(args)?;
    if let Some(fifo) = &spec.wait_fifo {
        wait_for_release(fifo);
    }
    if spec.hold_writable {
        // SAFETY: a valid NUL-terminated path; the descriptor stays open through the exec.
        if unsafe { libc::open(spec.path.as_ptr(), libc::O_WRONLY) } < 0 {
            report_errno(&io::Error::last_os_error());
            return Ok(EXIT_EXEC_OTHER);
        }
    }
    let argv = NullTerminated::new(&spec.argv);
    let envp = environment()?;
    let envp = NullTerminated::new(&envp);
    // SAFETY: path, argv and envp are NUL-terminated strings in NULL-terminated arrays that
    // outlive the call; execve only returns on failure.
    unsafe { libc::execve(spec.path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    Ok(exec_failed(&io::Error::last_os_error()))
}

fn cmd_execveat_fd(args: &[OsString]) -> CmdResult {
    let spec = parse_exec(args)?;
    // No O_CLOEXEC: for a `#!` script the interpreter reads the script through /dev/fd/N,
    // which must survive the exec (with O_CLOEXEC the kernel refuses with ENOENT).
    // SAFETY: path is a valid NUL-terminated string.
    let fd = unsafe { libc::open(spec.path.as_ptr(), libc::O_RDONLY) };
    if fd < 0 {
        let err = io::Error::last_os_error();
        report_errno(&err);
        return Ok(EXIT_EXEC_OTHER);
    }
    exec_fd(fd, &spec)
}

fn cmd_memfd_exec(args: &[OsString]) -> CmdResult {
    let spec = parse_exec(args)?;
    let image = match std::fs::read(std::ffi::OsStr::from_bytes(spec.path.as_bytes())) {
        Ok(image) => image,
        Err(e) => {
            report_errno(&e);
            return Ok(EXIT_EXEC_OTHER);
        }
    };
    // SAFETY: a valid NUL-terminated name; no flags.
    let fd = unsafe { libc::memfd_create(c"image".as_ptr(), 0) };
    if fd < 0 {
        report_errno(&io::Error::last_os_error());
        return Ok(EXIT_EXEC_OTHER);
    }
    let mut written = 0;
    while written < image.len() {
        let rest = &image[written..];
        // SAFETY: `rest` is a valid buffer of its length.
        let n = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
        if n <= 0 {
            report_errno(&io::Error::last_os_error());
            return Ok(EXIT_EXEC_OTHER);
        }
        written += n as usize;
    }
    exec_fd(fd, &spec)
}

/// `execveat(fd, "", argv, envp, AT_EMPTY_PATH)`; returns only when the exec failed.
fn exec_fd(fd: libc::c_int, spec: &ExecSpec) -> CmdResult {
    let argv = NullTerminated::new(&spec.argv);
    let envp = environment()?;
    let envp = NullTerminated::new(&envp);
    // SAFETY: as for execve; the empty path with AT_EMPTY_PATH makes the kernel exec `fd`.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd,
            c"".as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    Ok(exec_failed(&io::Error::last_os_error()))
}

/// The argument buffer the racing thread rewrites. An aligned 8-byte word written with single
/// stores, so the kernel reads either SAFE or EVIL, never a mix of both (a mix would match
/// neither and make the race less sharp).
static RACE_SLOT: AtomicU64 = AtomicU64::new(0);
/// Completed flips, so that the exec starts only once the other thread is really running.
static RACE_FLIPS: AtomicU64 = AtomicU64::new(0);

fn cmd_argv_race(args: &[OsString]) -> CmdResult {
    let [path, safe, evil, rest @ ..] = args else {
        return Err(Usage(
            "argv-race PATH SAFE EVIL ARGS… (one ARG is `@`)".into(),
        ));
    };
    let (safe, evil) = (race_word(safe)?, race_word(evil)?);
    if rest
        .iter()
        .filter(|a| a.as_bytes() == RACE_PLACEHOLDER.as_bytes())
        .count()
        != 1
    {
        return Err(Usage(format!(
            "argv-race: exactly one ARG must be `{RACE_PLACEHOLDER}`"
        )));
    }
    let path = cstring(path)?;
    let mut owned = vec![path.clone()];
    for a in rest {
        owned.push(cstring(a)?);
    }
    let mut argv = NullTerminated::new(&owned);
    let slot_index = 1 + rest
        .iter()
        .position(|a| a.as_bytes() == RACE_PLACEHOLDER.as_bytes())
        .unwrap_or_default();
    RACE_SLOT.store(safe, Ordering::SeqCst);
    argv.ptrs[slot_index] = RACE_SLOT.as_ptr().cast::<libc::c_char>().cast_const();
    // The same work after each store keeps the two values on screen for equal times.
    thread::spawn(move || loop {
        RACE_SLOT.store(evil, Ordering::Relaxed);
        RACE_FLIPS.fetch_add(1, Ordering::Relaxed);
        RACE_SLOT.store(safe, Ordering::Relaxed);
        RACE_FLIPS.fetch_add(1, Ordering::Relaxed);
    });
    while RACE_FLIPS.load(Ordering::Relaxed) < 1000 {
        std::hint::spin_loop();
    }
    let envp = environment()?;
    let envp = NullTerminated::new(&envp);
    // SAFETY: as in cmd_exec; the racing slot is a NUL-terminated 8-byte word in a static.
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    Ok(exec_failed(&io::Error::last_os_error()))
}

/// Packs a 1..=7 byte argument and its NUL into one little-endian word.
fn race_word(arg: &OsString) -> Result<u64, Usage> {
    let bytes = arg.as_bytes();
    if bytes.is_empty() || bytes.len() > 7 || bytes.contains(&0) {
        return Err(Usage(
            "argv-race: SAFE and EVIL must be 1 to 7 bytes".into(),
        ));
    }
    let mut word = [0u8; 8];
    word[..bytes.len()].copy_from_slice(bytes);
    Ok(u64::from_le_bytes(word))
}

fn cmd_echo_args(args: &[OsString]) -> CmdResult {
    let [file, rest @ ..] = args else {
        return Err(Usage("echo-args FILE ARGS…".into()));
    };
    match append_line(file.as_ref(), rest) {
        Ok(()) => {
            println!("ok");
            Ok(EXIT_OK)
        }
        Err(e) => {
            report_errno(&e);
            Ok(EXIT_ERRNO)
        }
    }
}

fn cmd_connect(args: &[OsString]) -> CmdResult {
    let (proto, addr) = parse_destination(args, "connect tcp|udp ADDR PORT")?;
    let result = match proto {
        "tcp" => TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map(drop),
        "udp" => unspecified_udp(&addr).and_then(|s| {
            s.connect(addr)?;
            s.send(b"cs-probe connect").map(drop)
        }),
        _ => return Err(Usage(format!("connect: unknown protocol {proto}"))),
    };
    Ok(report(result))
}

fn cmd_sendto(args: &[OsString]) -> CmdResult {
    let (proto, addr) = parse_destination(args, "sendto udp ADDR PORT")?;
    if proto != "udp" {
        return Err(Usage("sendto: only udp".into()));
    }
    let result = unspecified_udp(&addr).and_then(|s| s.send_to(b"cs-probe sendto", addr).map(drop));
    Ok(report(result))
}

fn cmd_connect_flood(args: &[OsString]) -> CmdResult {
    let usage = || Usage("connect-flood ADDR PORT N".into());
    let [addr, port, n] = args else {
        return Err(usage());
    };
    let dest = [OsString::from("udp"), addr.clone(), port.clone()];
    let (_, addr) = parse_destination(&dest, "connect-flood ADDR PORT N")?;
    let n: u64 = n.to_str().and_then(|n| n.parse().ok()).ok_or_else(usage)?;
    let socket = match unspecified_udp(&addr) {
        Ok(s) => s,
        Err(e) => {
            report_errno(&e);
            return Ok(EXIT_ERRNO);
        }
    };
    let (mut refused, mut other) = (0u64, 0u64);
    for _ in 0..n {
        match socket.connect(addr) {
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => refused += 1,
            _ => other += 1,
        }
    }
    println!("refused={refused} other={other}");
    Ok(EXIT_OK)
}

fn cmd_sleep(args: &[OsString]) -> CmdResult {
    let secs: f64 = args
        .first()
        .and_then(|a| a.to_str())
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| Usage("sleep SECS".into()))?;
    thread::sleep(Duration::from_secs_f64(secs));
    println!("ok");
    Ok(EXIT_OK)
}

fn cmd_run_many(args: &[OsString]) -> CmdResult {
    let [n, path, rest @ ..] = args else {
        return Err(Usage("run-many N PATH [ARGS…]".into()));
    };
    let n: u32 = n
        .to_str()
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| Usage("run-many: N must be a number".into()))?;
    let mut failed = 0;
    let mut first = None;
    for _ in 0..n {
        let status = std::process::Command::new(path)
            .args(rest)
            .stdout(std::process::Stdio::null())
            .status();
        match status {
            Ok(s) if s.success() => {}
            other => {
                failed += 1;
                first.get_or_insert_with(|| format!("{other:?}"));
            }
        }
    }
    match first {
        None => {
            println!("ok");
            Ok(EXIT_OK)
        }
        Some(first) => {
            println!("failed={failed} of {n}, first: {first}");
            Ok(EXIT_ERRNO)
        }
    }
}

/// `write-many N DIR`.
fn cmd_write_many(args: &[OsString]) -> CmdResult {
    let [n, dir] = args else {
        return Err(Usage("write-many N DIR".into()));
    };
    let n: u32 = n
        .to_str()
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| Usage("write-many: N must be a number".into()))?;
    let dir = std::path::Path::new(dir);
    for i in 0..n {
        let path = dir.join(format!("f{i}"));
        if let Err(e) = std::fs::File::create(&path) {
            eprintln!("cs-probe: creating {}", path.display());
            report_errno(&e);
            return Ok(EXIT_ERRNO);
        }
    }
    println!("ok");
    Ok(EXIT_OK)
}

/// `listen ADDR`: a TCP listener on ADDR, any port; prints `port=N`, then waits to be
/// killed (a stand-in server, e.g. copied under the name `sshd`).
fn cmd_listen(args: &[OsString]) -> CmdResult {
    let addr = args
        .first()
        .and_then(|a| a.to_str())
        .ok_or_else(|| Usage("listen ADDR".into()))?;
    let listener = match std::net::TcpListener::bind((addr, 0)) {
        Ok(l) => l,
        Err(e) => {
            report_errno(&e);
            return Ok(EXIT_ERRNO);
        }
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    println!("port={port}");
    let _ = io::stdout().flush();
    loop {
        thread::sleep(Duration::from_secs(3600));
    }
}

fn parse_destination<'a>(
    args: &'a [OsString],
    usage: &str,
) -> Result<(&'a str, SocketAddr), Usage> {
    let [proto, addr, port] = args else {
        return Err(Usage(usage.into()));
    };
    let proto = proto.to_str().ok_or_else(|| Usage(usage.into()))?;
    let ip: IpAddr = addr
        .to_str()
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| Usage(format!("bad address {addr:?}")))?;
    let port: u16 = port
        .to_str()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| Usage(format!("bad port {port:?}")))?;
    Ok((proto, SocketAddr::new(ip, port)))
}

/// A UDP socket of the destination's family, bound to the unspecified address. For an
/// IPv4-mapped destination this is an IPv6 socket (dual stack), as an application would use.
fn unspecified_udp(dest: &SocketAddr) -> io::Result<UdpSocket> {
    match dest {
        SocketAddr::V4(_) => UdpSocket::bind("0.0.0.0:0"),
        SocketAddr::V6(_) => UdpSocket::bind("[::]:0"),
    }
}

/// Blocks until a writer opens the FIFO; every reader blocked here is released at once.
fn wait_for_release(fifo: &CString) {
    println!("waiting");
    let _ = io::stdout().flush();
    // SAFETY: fifo is a valid NUL-terminated path. The descriptor is kept open (and closed by
    // the exec through O_CLOEXEC) so the writer never sees a reader disappear.
    let fd = unsafe { libc::open(fifo.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        eprintln!("cs-probe: cannot open fifo: {}", io::Error::last_os_error());
    }
}

fn report(result: io::Result<()>) -> i32 {
    match result {
        Ok(()) => {
            println!("ok");
            EXIT_OK
        }
        Err(e) => {
            report_errno(&e);
            EXIT_ERRNO
        }
    }
}

fn exec_failed(err: &io::Error) -> i32 {
    report_errno(err);
    match err.raw_os_error() {
        Some(libc::EPERM | libc::EACCES) => EXIT_EXEC_DENIED,
        Some(libc::ENOENT) => EXIT_EXEC_NOT_FOUND,
        _ => EXIT_EXEC_OTHER,
    }
}

fn report_errno(err: &io::Error) {
    match err.raw_os_error() {
        Some(n) => println!("errno={n} {}", errno_name(n)),
        // Not from a system call (cannot happen for the operations above): say so plainly.
        None => println!("errno=0 {err}"),
    }
}

fn errno_name(n: i32) -> &'static str {
    match n {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EINTR => "EINTR",
        libc::E2BIG => "E2BIG",
        libc::ENOEXEC => "ENOEXEC",
        libc::EACCES => "EACCES",
        libc::EINVAL => "EINVAL",
        libc::ETXTBSY => "ETXTBSY",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EADDRNOTAVAIL => "EADDRNOTAVAIL",
        libc::ENETUNREACH => "ENETUNREACH",
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::EHOSTUNREACH => "EHOSTUNREACH",
        libc::EBUSY => "EBUSY",
        libc::ESRCH => "ESRCH",
        libc::ENOSYS => "ENOSYS",
        libc::EEXIST => "EEXIST",
        libc::EBADF => "EBADF",
        _ => "E?",
    }
}

fn append_line(file: &std::path::Path, args: &[OsString]) -> io::Result<()> {
    let mut line = join(args);
    line.push('\n');
    // One write of the whole line on an O_APPEND file: concurrent writers do not interleave.
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)?
        .write_all(line.as_bytes())
}

fn join(args: &[OsString]) -> String {
    args.iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

fn cstring(arg: &OsString) -> Result<CString, Usage> {
    CString::new(arg.clone().into_vec()).map_err(|_| Usage(format!("NUL byte in {arg:?}")))
}

/// The current environment as `KEY=VALUE` strings, passed on to the new image.
fn environment() -> Result<Vec<CString>, Usage> {
    std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            cstring(&kv)
        })
        .collect()
}

/// A NULL-terminated array of pointers into borrowed C strings, as execve wants it.
struct NullTerminated<'a> {
    ptrs: Vec<*const libc::c_char>,
    _strings: std::marker::PhantomData<&'a CString>,
}

impl<'a> NullTerminated<'a> {
    fn new(strings: &'a [CString]) -> Self {
        let ptrs = strings
            .iter()
            .map(|s| s.as_ptr())
            .chain(std::iter::once(ptr::null()))
            .collect();
        Self {
            ptrs,
            _strings: std::marker::PhantomData,
        }
    }

    fn as_ptr(&self) -> *const *const libc::c_char {
        self.ptrs.as_ptr()
    }
}
