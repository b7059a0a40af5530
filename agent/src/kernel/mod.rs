//! What the running kernel offers and how its structures are laid out.

pub mod btf;
pub mod identity;
pub mod interfaces;
pub mod mode;
pub mod mounts;

/// Lifts RLIMIT_MEMLOCK: before 5.11 the kernel charges BPF maps against it, and the default
/// (64 KiB on many systems) is far below what the maps need.
pub fn raise_memlock() -> std::io::Result<()> {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: valid pointer to an rlimit.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
