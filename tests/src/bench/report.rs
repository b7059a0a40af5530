//! The wording both benchmark reports share, so that `cargo xtask bench` readers see one
//! vocabulary across the hook-overhead, approval-loop and upload reports.

/// `met` or a highlighted `missed`: how a report judges a figure against its target.
pub fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**missed**"
    }
}
