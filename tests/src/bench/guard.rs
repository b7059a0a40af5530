//! The test harness written for the root-only tests panics on trouble; a benchmark must turn
//! that into an error, clean up and say what failed instead.

use std::panic::{self, AssertUnwindSafe};

/// Runs `f`, turning a panic of the harness into an error that names `what`.
pub fn guarded<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, String> {
    // The message becomes the error; the default hook would print it (and a backtrace) too.
    let hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    panic::set_hook(hook);
    result.map_err(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default();
        format!("{what}: {msg}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_that_names_the_step() {
        assert_eq!(guarded("adding", || 1 + 1), Ok(2));
        assert_eq!(
            guarded::<()>("starting", || panic!("no {}", "daemon")),
            Err("starting: no daemon".to_owned())
        );
        assert_eq!(
            guarded::<()>("stopping", || panic!("gone")),
            Err("stopping: gone".to_owned())
        );
    }
}
