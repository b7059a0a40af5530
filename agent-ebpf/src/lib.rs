//! This file exists to give cargo a library target (aya-build depends on it to rebuild the
//! agent when the kernel programs change); the programs are in `main.rs`.
#![no_std]
