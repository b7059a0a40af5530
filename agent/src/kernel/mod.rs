//! What the running kernel offers and how its structures are laid out.

pub mod btf;
pub mod mode;
pub mod mounts;
