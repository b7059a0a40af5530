//! Loading the programs a mode attaches — the kernel's verifier, most of a daemon start — on
//! every core at once. Privileged program loads verify in parallel in the kernel; one after
//! another they took 10 to 17 s on 5.10 in the test VMs (`exec_judge` alone 4 s). Nothing is
//! attached here: the attach code then finds the programs loaded, and loads what is not (a
//! program the kernel refused here is loaded again there, so its error is reported where it
//! always was, with the fallback decisions that depend on it).

use std::sync::Mutex;

use aya::{programs::Program, Btf};

use super::Loaded;

/// Most programs verified at once: each verification holds its own state lists in kernel
/// memory, and past a few threads a start is bound by its longest program anyway.
const MAX_THREADS: usize = 4;

/// Loads the programs named in `order` (the longest to verify first: a worker that starts
/// with the longest one finishes with the short ones) on one thread per core, at most
/// [`MAX_THREADS`]; `btf` is the kernel's, for LSM programs (without it they are left to the
/// attach code). Errors are left there too.
pub fn preload(loaded: &mut Loaded, order: &[&str], btf: Option<&Btf>) {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let mut queue: Vec<(usize, &str, &mut Program)> = loaded
        .ebpf
        .programs_mut()
        .filter_map(|(name, p)| Some((order.iter().position(|w| *w == name)?, name, p)))
        .collect();
    // Popped from the end: the longest last.
    queue.sort_by_key(|(rank, _, _)| std::cmp::Reverse(*rank));
    let queue = Mutex::new(queue);
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, MAX_THREADS) {
            s.spawn(|| loop {
                let next = queue.lock().map(|mut q| q.pop()).ok().flatten();
                let Some((_, name, program)) = next else {
                    return;
                };
                load(name, program, btf);
            });
        }
    });
}

/// Loads one program as its type needs; a refusal is logged and left to the attach code.
fn load(name: &str, program: &mut Program, btf: Option<&Btf>) {
    let started = std::time::Instant::now();
    let result = match program {
        Program::Lsm(p) => match btf {
            Some(btf) => p.load(name, btf),
            None => return,
        },
        Program::TracePoint(p) => p.load(),
        Program::RawTracePoint(p) => p.load(),
        Program::CgroupSockAddr(p) => p.load(),
        Program::CgroupSock(p) => p.load(),
        _ => return,
    };
    match result {
        Ok(()) => tracing::debug!(
            program = name,
            ms = started.elapsed().as_millis() as u64,
            "program verified"
        ),
        Err(e) => tracing::debug!(program = name, error = %e, "program not loaded in advance"),
    }
}
