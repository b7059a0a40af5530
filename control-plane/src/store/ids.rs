//! Random identifiers: request ids (`r-` + 10 hex digits) and grant ids (16 hex digits of a
//! nonzero u64, the key of the kernel's grant map).

use rand::Rng as _;

/// A new request id, e.g. `r-3f9a1c02de` (40 random bits: collisions are checked by the
/// caller, which holds the writer lock).
pub(super) fn request_id() -> String {
    let n: u64 = rand::rng().random_range(0..1u64 << 40);
    format!("r-{n:010x}")
}

/// A new grant id: never zero (the kernel reads 0 as "no grant").
pub(super) fn grant_id() -> String {
    let n: u64 = rand::rng().random_range(1..=u64::MAX);
    format!("{n:016x}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn shapes() {
        let r = super::request_id();
        assert!(r.starts_with("r-") && r.len() == 12, "{r}");
        let g = super::grant_id();
        assert_eq!(g.len(), 16);
        assert_ne!(u64::from_str_radix(&g, 16).expect("hex"), 0);
    }
}
